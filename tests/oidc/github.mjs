// A stand-in for GitHub's OAuth and REST endpoints, as GitHub documents them, for
// sudohub's GitHub and plain OAuth 2 login tests (no real GitHub can be reached here):
//   GET  /login/oauth/authorize      -> 302 to redirect_uri?code&state (the user the test
//                                       picked with POST /_test/user signs in)
//   POST /login/oauth/access_token   -> {"access_token", "token_type", "scope"} after
//                                       checking the client, the code (once) and PKCE
//   GET  /api/user                                        -> {"login", "id", ...}
//   GET  /api/orgs/{org}/members/{user}                   -> 204 member, 404 not
//   GET  /api/orgs/{org}/teams/{team}/memberships/{user}  -> {"state": "active"} or 404
// Environment: PORT, CLIENT_ID, CLIENT_SECRET, USERS (JSON list of
// {"login", "id", "orgs": ["org", "org:team"]}).
import http from 'node:http';
import crypto from 'node:crypto';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const users = JSON.parse(env('USERS'));
let next = users[0].login;
const codes = new Map(); // code -> {login, challenge, redirect}
const tokens = new Map(); // token -> login

const json = (res, status, body) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};

function readBody(req) {
  return new Promise((resolve) => {
    let b = '';
    req.on('data', (c) => { b += c; });
    req.on('end', () => resolve(b));
  });
}

function bearer(req) {
  const h = req.headers.authorization || '';
  const m = /^(?:Bearer|token) (.+)$/i.exec(h);
  return m ? tokens.get(m[1]) : undefined;
}

http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  const p = url.pathname;
  if (req.method === 'POST' && p === '/_test/user') {
    next = (await readBody(req)).trim();
    return res.writeHead(204).end();
  }
  if (req.method === 'GET' && p === '/login/oauth/authorize') {
    const q = url.searchParams;
    if (q.get('client_id') !== env('CLIENT_ID')) return json(res, 400, { error: 'bad client' });
    const code = crypto.randomBytes(10).toString('hex');
    codes.set(code, { login: next, challenge: q.get('code_challenge'), redirect: q.get('redirect_uri') });
    const to = new URL(q.get('redirect_uri'));
    to.searchParams.set('code', code);
    to.searchParams.set('state', q.get('state'));
    res.writeHead(302, { location: to.toString() });
    return res.end();
  }
  if (req.method === 'POST' && p === '/login/oauth/access_token') {
    const form = new URLSearchParams(await readBody(req));
    const c = codes.get(form.get('code'));
    codes.delete(form.get('code'));
    const verifier = form.get('code_verifier') || '';
    const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
    // The client's credentials in the form (GitHub's way) or as HTTP Basic (RFC 6749's).
    const basic = /^Basic (.+)$/.exec(req.headers.authorization || '');
    const [id, secret] = basic
      ? Buffer.from(basic[1], 'base64').toString().split(':').map(decodeURIComponent)
      : [form.get('client_id'), form.get('client_secret')];
    if (id !== env('CLIENT_ID') || secret !== env('CLIENT_SECRET')) {
      return json(res, 200, { error: 'incorrect_client_credentials' });
    }
    if (!c || c.challenge !== challenge || c.redirect !== form.get('redirect_uri')) {
      return json(res, 200, { error: 'bad_verification_code' });
    }
    const token = 'gho_' + crypto.randomBytes(16).toString('hex');
    tokens.set(token, c.login);
    return json(res, 200, { access_token: token, token_type: 'bearer', scope: 'read:org' });
  }
  const login = bearer(req);
  const u = users.find((x) => x.login === login);
  if (!u) return json(res, 401, { message: 'Bad credentials' });
  // `groups` is not GitHub's: it lets the same stand-in serve as a plain OAuth 2
  // provider whose user data carries groups.
  if (p === '/api/user') return json(res, 200, { login: u.login, id: u.id, name: u.login, type: 'User', groups: u.orgs });
  let m = /^\/api\/orgs\/([^/]+)\/members\/([^/]+)$/.exec(p);
  if (m) {
    const [org, who] = [decodeURIComponent(m[1]), decodeURIComponent(m[2])];
    const member = users.find((x) => x.login === who)?.orgs.includes(org);
    return member ? res.writeHead(204).end() : json(res, 404, { message: 'Not Found' });
  }
  m = /^\/api\/orgs\/([^/]+)\/teams\/([^/]+)\/memberships\/([^/]+)$/.exec(p);
  if (m) {
    const [org, team, who] = m.slice(1).map(decodeURIComponent);
    const member = users.find((x) => x.login === who)?.orgs.includes(`${org}:${team}`);
    return member ? json(res, 200, { state: 'active', role: 'member' }) : json(res, 404, { message: 'Not Found' });
  }
  json(res, 404, { message: 'Not Found' });
}).listen(Number(env('PORT')), '127.0.0.1', () => console.log('github stand-in listening'));
