//! Plain OAuth 2 (GitHub, and providers without OpenID Connect): the authorization code
//! flow with PKCE and `state` (oauth2 crate), then the user's data read with the token
//! from `userdata_url` (GitHub: `GET /user`, and its organisations and teams for
//! `allowed_organizations`).

use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse, TokenUrl,
};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// A path segment: everything but RFC 3986's unreserved characters escaped.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
use serde_json::Value;

use super::http::{describe, read_bounded, Http};
use super::oidc::token_error;
use super::{Identity, OAuthError, Started};

type Client = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// One plain OAuth 2 provider.
pub struct Plain {
    client: Client,
    scopes: Vec<String>,
    userdata_url: String,
    /// GitHub: its API, to check `allowed_organizations`.
    github_api: Option<String>,
}

impl Plain {
    /// The provider with these endpoints, for this client.
    pub fn new(
        urls: (&str, &str, &str),
        client_id: &str,
        secret: Option<String>,
        redirect: &str,
        scopes: Vec<String>,
        github_api: Option<String>,
    ) -> Result<Self, String> {
        let (authorize, token, userdata) = urls;
        let mut client = BasicClient::new(ClientId::new(client_id.to_owned()))
            .set_auth_uri(
                AuthUrl::new(authorize.to_owned())
                    .map_err(|e| format!("[auth.oauth] authorize_url: {e}"))?,
            )
            .set_token_uri(
                TokenUrl::new(token.to_owned())
                    .map_err(|e| format!("[auth.oauth] token_url: {e}"))?,
            )
            .set_redirect_uri(
                RedirectUrl::new(redirect.to_owned())
                    .map_err(|e| format!("[auth.oauth] oauth_callback_url: {e}"))?,
            );
        if let Some(s) = secret {
            client = client.set_client_secret(ClientSecret::new(s));
        }
        if github_api.is_some() {
            // GitHub takes the client's credentials in the form.
            client = client.set_auth_type(AuthType::RequestBody);
        }
        Ok(Self {
            client,
            scopes,
            userdata_url: userdata.to_owned(),
            github_api,
        })
    }

    /// The provider's authorization URL for a new sign-in.
    pub fn begin(&self) -> Started {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut req = self.client.authorize_url(CsrfToken::new_random);
        for s in &self.scopes {
            req = req.add_scope(Scope::new(s.clone()));
        }
        let (url, state) = req.set_pkce_challenge(challenge).url();
        Started {
            url: url.to_string(),
            state: state.secret().clone(),
            nonce: String::new(),
            verifier: verifier.secret().clone(),
        }
    }

    /// Exchanges `code`, reads the user's data (and organisations).
    pub async fn finish(
        &self,
        http: &reqwest::Client,
        code: &str,
        verifier: &str,
        orgs: &[String],
        login_claim: &str,
    ) -> Result<Identity, OAuthError> {
        let hc = Http(http.clone());
        let token = self
            .client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_owned()))
            .request_async(&hc)
            .await
            .map_err(token_error)?;
        let bearer = token.access_token().secret().clone();
        let (status, data) = get_json(http, &self.userdata_url, &bearer).await?;
        let Some(Value::Object(claims)) = data.filter(|_| status == 200) else {
            return Err(OAuthError::Rejected(format!(
                "user data: HTTP {status}, not a JSON object"
            )));
        };
        // A stable id for the binding: GitHub's numeric id, OIDC-like `sub`, else the
        // name itself.
        let subject = ["id", "sub"]
            .iter()
            .find_map(|k| match claims.get(*k) {
                Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
                Some(Value::Number(n)) => Some(n.to_string()),
                _ => None,
            })
            .or_else(|| {
                claims
                    .get(login_claim)
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .ok_or_else(|| OAuthError::Rejected("user data has no id".into()))?;
        let mut groups = Vec::new();
        if let (Some(api), Some(login)) = (
            &self.github_api,
            claims.get("login").and_then(Value::as_str),
        ) {
            for entry in orgs {
                if github_member(http, api, entry, login, &bearer).await? {
                    groups.push(entry.clone());
                }
            }
        }
        Ok(Identity {
            subject,
            claims,
            groups,
            tokens: super::token_fields(&token),
        })
    }
}

/// Whether `login` is in the organisation `org`, or the team `org:team`, by GitHub's API
/// (`GET /orgs/{org}/members/{user}`: 204; `GET /orgs/{org}/teams/{team}/memberships/{user}`:
/// an active membership).
async fn github_member(
    http: &reqwest::Client,
    api: &str,
    entry: &str,
    login: &str,
    bearer: &str,
) -> Result<bool, OAuthError> {
    let enc = |s: &str| utf8_percent_encode(s, SEGMENT).to_string();
    let api = api.trim_end_matches('/');
    match entry.split_once(':') {
        None => {
            let url = format!("{api}/orgs/{}/members/{}", enc(entry), enc(login));
            Ok(get_json(http, &url, bearer).await?.0 == 204)
        }
        Some((org, team)) => {
            let url = format!(
                "{api}/orgs/{}/teams/{}/memberships/{}",
                enc(org),
                enc(team),
                enc(login)
            );
            let (status, body) = get_json(http, &url, bearer).await?;
            Ok(status == 200
                && body
                    .as_ref()
                    .and_then(|b| b.get("state"))
                    .and_then(Value::as_str)
                    == Some("active"))
        }
    }
}

/// GETs `url` with the bearer token: the status and the JSON body, if any.
async fn get_json(
    http: &reqwest::Client,
    url: &str,
    bearer: &str,
) -> Result<(u16, Option<Value>), OAuthError> {
    let resp = http
        .get(url)
        .bearer_auth(bearer)
        .header("Accept", "application/json")
        .send()
        .await
        .map_err(|e| OAuthError::Unavailable(format!("user data: {}", describe(e))))?;
    let status = resp.status().as_u16();
    let body = read_bounded(resp)
        .await
        .map_err(|e| OAuthError::Unavailable(format!("user data: {e}")))?;
    Ok((status, serde_json::from_slice(&body).ok()))
}
