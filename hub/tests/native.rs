//! The hub's own accounts through the pages, as a browser uses them (real HTTP, forms,
//! cookies): sign-up, approval at /hub/authorize, login, change of password, lockouts
//! that outlive a restart, blocked and discarded sign-ups, and every refusal with its
//! message. PAM beside them, and Unix accounts made on demand, are in tests/ (root).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;

use reqwest::StatusCode;
use sudohub::db::AccountStatus;

const NATIVE: &str = "[auth]\nsource = \"native\"\nadmin_users = [\"boss\"]\n";
const GOOD: &str = "violet-Anchor-73-river";

/// A browser: a cookie jar, no redirects followed.
fn browser() -> reqwest::Client {
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .no_proxy()
        .build()
        .unwrap()
}

/// The `_xsrf` value of the form on `page`.
fn xsrf_of(page: &str) -> String {
    let at = page
        .find("name=\"_xsrf\" value=\"")
        .unwrap_or_else(|| panic!("no form with _xsrf in {page}"))
        + 20;
    page[at..].split('"').next().unwrap().to_owned()
}

async fn get(c: &reqwest::Client, h: &Hub, path: &str) -> (StatusCode, String) {
    let r = c.get(url(h, path)).send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

/// GETs `path`, fills its form with `fields` and posts it: status, body and Location.
async fn submit(
    c: &reqwest::Client,
    h: &Hub,
    path: &str,
    fields: &[(&str, &str)],
) -> (StatusCode, String, String) {
    let (status, page) = get(c, h, path).await;
    assert_eq!(status, StatusCode::OK, "GET {path}: {page}");
    let xsrf = xsrf_of(&page);
    let mut form: Vec<(&str, &str)> = vec![("_xsrf", &xsrf)];
    form.extend_from_slice(fields);
    let r = c.post(url(h, path)).form(&form).send().await.unwrap();
    let loc = r
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (r.status(), r.text().await.unwrap(), loc)
}

async fn sign_up(h: &Hub, name: &str, pw: &str) -> (StatusCode, String) {
    let (status, body, _) = submit(
        &browser(),
        h,
        "/hub/signup",
        &[("username", name), ("password", pw), ("password_again", pw)],
    )
    .await;
    (status, body)
}

/// Logs in with a fresh browser: that browser once it is in, or the page's message.
async fn log_in(h: &Hub, name: &str, pw: &str) -> Result<reqwest::Client, String> {
    let c = browser();
    let (status, body, loc) =
        submit(&c, h, "/hub/login", &[("username", name), ("password", pw)]).await;
    if status == StatusCode::SEE_OTHER || status == StatusCode::FOUND {
        assert_eq!(loc, "/hub/spawn");
        Ok(c)
    } else {
        let at = body.find("class=\"err\">").map(|i| i + 12).unwrap_or(0);
        Err(body[at..].split('<').next().unwrap().to_owned())
    }
}

fn status_of(h: &Hub, name: &str) -> Option<AccountStatus> {
    h.state.db.native().get(&u(name)).unwrap().map(|a| a.status)
}

/// An admin (boss, in `admin_users`: such names are not signed up, an admin's account is
/// made as `sudohub set-password` makes it) logged in.
async fn admin(h: &Hub) -> reqwest::Client {
    assert!(sign_up(h, "boss", GOOD)
        .await
        .1
        .contains("is not available"));
    let hash = sudohub::auth::password::hash(&sudohub_protocol::Secret::new(GOOD).unwrap())
        .await
        .unwrap();
    h.state.db.users().ensure(&u("boss"), Some(true)).unwrap();
    assert!(h
        .state
        .db
        .native()
        .create_for_user(&u("boss"), &hash)
        .unwrap());
    log_in(h, "boss", GOOD).await.unwrap()
}

#[tokio::test]
async fn sign_up_wait_for_approval_log_in_and_change_the_password() {
    let h = hub("/", NATIVE).await;
    let boss = admin(&h).await;
    // The login page offers sign-up; system accounts are not mentioned.
    let (_, login) = get(&browser(), &h, "/hub/login").await;
    assert!(login.contains("href=\"/hub/signup\""), "{login}");
    assert!(!login.contains("account on this machine"));

    let (status, body) = sign_up(&h, "carol", GOOD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("waits for an administrator"), "{body}");
    assert_eq!(status_of(&h, "carol"), Some(AccountStatus::Pending));
    // Kept hashed with argon2id; the password is nowhere.
    let acct = h.state.db.native().get(&u("carol")).unwrap().unwrap();
    assert!(acct.password.starts_with("$argon2id$"), "{}", acct.password);
    assert!(!acct.password.contains(GOOD));
    // Waiting: the right password says so; a wrong one says only that it is wrong.
    assert_eq!(
        log_in(&h, "carol", GOOD).await.unwrap_err(),
        "Your account is waiting for an administrator&#x27;s approval."
    );
    assert_eq!(
        log_in(&h, "carol", "wrong-password-here")
            .await
            .unwrap_err(),
        "Invalid username or password"
    );
    assert_eq!(
        log_in(&h, "nobody-here", GOOD).await.unwrap_err(),
        "Invalid username or password"
    );

    // The admin page links to the waiting sign-ups; the admin approves.
    let (_, admin_page) = get(&boss, &h, "/hub/admin").await;
    assert!(admin_page.contains("Sign-ups: 1 waiting"), "{admin_page}");
    assert!(admin_page.contains("data-signup=\"carol\""), "{admin_page}");
    // Decided from the admin page, back to it; here a sign-up made for this: blocked.
    assert_eq!(sign_up(&h, "zeke", GOOD).await.0, StatusCode::OK);
    let r = boss
        .post(url(&h, "/hub/authorize/zeke"))
        .form(&[
            ("_xsrf", xsrf_of(&admin_page).as_str()),
            ("action", "block"),
            ("back", "admin"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/hub/admin");
    assert_eq!(status_of(&h, "zeke"), Some(AccountStatus::Blocked));
    let (_, list) = get(&boss, &h, "/hub/authorize").await;
    assert!(list.contains("data-name=\"carol\""), "{list}");
    let xsrf = xsrf_of(&list);
    let r = boss
        .post(url(&h, "/hub/authorize/carol"))
        .form(&[("_xsrf", xsrf.as_str()), ("action", "approve")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(status_of(&h, "carol"), Some(AccountStatus::Approved));
    let decided = h
        .state
        .db
        .native()
        .get(&u("carol"))
        .unwrap()
        .unwrap()
        .decided;
    assert_eq!(decided.unwrap().1, "boss");

    // In; the home page offers the change of password.
    let carol = log_in(&h, "carol", GOOD).await.unwrap();
    let (_, home) = get(&carol, &h, "/hub/home").await;
    assert!(home.contains("href=\"/hub/change-password\""), "{home}");
    let new = "amber-Lantern-58-meadow";
    for (old, pw, again, says) in [
        (
            "not-the-password",
            new,
            new,
            "current password is not right",
        ),
        (GOOD, new, "amber-Lantern-58-meadoW", "not the same"),
        (GOOD, "password123", "password123", "too common"),
        (GOOD, "short", "short", "at least 8"),
    ] {
        let (status, body, _) = submit(
            &carol,
            &h,
            "/hub/change-password",
            &[
                ("old_password", old),
                ("password", pw),
                ("password_again", again),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{says}");
        assert!(body.contains(says), "{says}: {body}");
    }
    assert!(log_in(&h, "carol", GOOD).await.is_ok(), "unchanged so far");
    let (status, body, _) = submit(
        &carol,
        &h,
        "/hub/change-password",
        &[
            ("old_password", GOOD),
            ("password", new),
            ("password_again", new),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(log_in(&h, "carol", GOOD).await.is_err());
    assert!(log_in(&h, "carol", new).await.is_ok());

    // An admin sets a password; a user may not set another's.
    let third = "copper-Harbor-19-willow";
    assert_eq!(
        get(&carol, &h, "/hub/change-password/boss").await.0,
        StatusCode::FORBIDDEN
    );
    // Her session's XSRF token, from a page of hers with a form.
    let (_, token_page) = get(&carol, &h, "/hub/token").await;
    let xsrf = xsrf_of(&token_page);
    let r = carol
        .post(url(&h, "/hub/change-password/boss"))
        .form(&[
            ("_xsrf", xsrf.as_str()),
            ("password", third),
            ("password_again", third),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(
        log_in(&h, "boss", GOOD).await.is_ok(),
        "boss's password is unchanged"
    );
    let (status, body, _) = submit(
        &boss,
        &h,
        "/hub/change-password/carol",
        &[("password", third), ("password_again", third)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(log_in(&h, "carol", third).await.is_ok());
}

#[tokio::test]
async fn bad_sign_ups_are_refused_with_what_is_wrong_and_record_nothing() {
    let extra = format!(
        "{NATIVE}[auth.native]\nask_email_on_signup = true\ntos = \"I follow the lab's rules.\"\nminimum_password_length = 10\nvalid_username_regex = \"[a-z]+[0-9]*\"\n"
    );
    let h = hub("/", &extra).await;
    let c = browser();
    let (_, form) = get(&c, &h, "/hub/signup").await;
    assert!(form.contains("I follow the lab&#x27;s rules."), "{form}");
    assert!(form.contains("name=\"email\""));
    let ok = |name: &'static str| -> Vec<(&'static str, &'static str)> {
        vec![
            ("username", name),
            ("email", "dora@example.org"),
            ("password", GOOD),
            ("password_again", GOOD),
            ("tos", "on"),
        ]
    };
    let with = |name: &'static str, k: &'static str, v: &'static str| {
        let mut f = ok(name);
        f.retain(|(key, _)| *key != k);
        if !v.is_empty() {
            f.push((k, v));
        }
        f
    };
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (ok("Dora"), "cannot be a user name"),
        (ok("dora.x"), "cannot be a user name"),
        (ok("-rf"), "cannot be a user name"),
        (ok("dora_x"), "valid_username_regex"),
        (ok("root"), "is not available"),
        (ok("daemon"), "is not available"),
        (ok("nobody"), "is not available"),
        (ok("boss"), "is not available"),
        (with("dora", "email", ""), "valid email"),
        (with("dora", "email", "dora at example"), "valid email"),
        (with("dora", "tos", ""), "terms of service"),
        (
            with("dora", "password_again", "violet-Anchor-73-rivers"),
            "not the same",
        ),
        (
            vec![
                ("username", "dora"),
                ("email", "dora@example.org"),
                ("password", "dora123456"),
                ("password_again", "dora123456"),
                ("tos", "on"),
            ],
            "too common",
        ),
        (
            vec![
                ("username", "dora"),
                ("email", "dora@example.org"),
                ("password", "Ab3$x9"),
                ("password_again", "Ab3$x9"),
                ("tos", "on"),
            ],
            "at least 10",
        ),
    ];
    for (fields, says) in cases {
        let (status, body, _) = submit(&c, &h, "/hub/signup", &fields).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{says}: {body}");
        assert!(body.contains(says), "{says}: {body}");
        // The form comes back with the name kept and the passwords not.
        assert!(!body.contains(GOOD), "{says}: a password came back");
    }
    assert!(h.state.db.native().list(10).unwrap().is_empty());
    // Without the form's XSRF token: refused.
    let r = browser()
        .post(url(&h, "/hub/signup"))
        .form(&ok("dora"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // The good one, then the same name again.
    let (status, body, _) = submit(&c, &h, "/hub/signup", &ok("dora")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body, _) = submit(&c, &h, "/hub/signup", &ok("dora")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("is not available"), "{body}");
    let acct = h.state.db.native().get(&u("dora")).unwrap().unwrap();
    assert_eq!(acct.email.as_deref(), Some("dora@example.org"));
    // Five sign-ups an hour from one address; refusals do not count.
    for n in ["spama", "spamb", "spamc", "spamd"] {
        let (status, body, _) = submit(&c, &h, "/hub/signup", &ok(n)).await;
        assert_eq!(status, StatusCode::OK, "{n}: {body}");
    }
    let (status, body, _) = submit(&c, &h, "/hub/signup", &ok("spame")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(
        body.contains("Too many sign-ups from your address"),
        "{body}"
    );
    assert!(h.state.db.native().get(&u("spame")).unwrap().is_none());

    // A hub without sign-ups has no sign-up page.
    let h2 = hub(
        "/",
        "[auth]\nsource = \"native\"\n[auth.native]\nenable_signup = false\n",
    )
    .await;
    assert_eq!(
        get(&browser(), &h2, "/hub/signup").await.0,
        StatusCode::NOT_FOUND
    );
    let pam_only = hub("/", "").await;
    assert_eq!(
        get(&browser(), &pam_only, "/hub/signup").await.0,
        StatusCode::NOT_FOUND
    );
    let (status, _) = get(&browser(), &pam_only, "/hub/authorize").await;
    assert!(status.is_redirection(), "to the login page: {status}");
}

#[tokio::test]
async fn blocked_and_discarded_sign_ups_cannot_log_in_and_only_admins_decide() {
    let h = hub("/", NATIVE).await;
    let boss = admin(&h).await;
    for n in ["erin", "finn"] {
        assert_eq!(sign_up(&h, n, GOOD).await.0, StatusCode::OK);
    }
    // Erin, approved, may not decide anything.
    h.state
        .db
        .native()
        .decide(&u("erin"), AccountStatus::Approved, &u("boss"))
        .unwrap();
    let erin = log_in(&h, "erin", GOOD).await.unwrap();
    let erin_token = api_token(&h, "erin");
    assert_eq!(
        get(&erin, &h, "/hub/authorize").await.0,
        StatusCode::FORBIDDEN
    );
    let (_, token_page) = get(&erin, &h, "/hub/token").await;
    let xsrf = xsrf_of(&token_page);
    let r = erin
        .post(url(&h, "/hub/authorize/finn"))
        .form(&[("_xsrf", xsrf.as_str()), ("action", "approve")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(status_of(&h, "finn"), Some(AccountStatus::Pending));

    let (_, list) = get(&boss, &h, "/hub/authorize").await;
    let xsrf = xsrf_of(&list);
    let act = |who: &'static str, action: &'static str, xsrf: String| {
        let boss = boss.clone();
        let h_url = url(&h, &format!("/hub/authorize/{who}"));
        async move {
            boss.post(h_url)
                .form(&[("_xsrf", xsrf.as_str()), ("action", action)])
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(
        act("finn", "bogus", xsrf.clone()).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        act("finn", "approve", "forged".into()).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(status_of(&h, "finn"), Some(AccountStatus::Pending));
    assert_eq!(act("erin", "block", xsrf.clone()).await, StatusCode::OK);
    // Blocking ends what the account holds: its session and its API tokens.
    let (status, _) = get(&erin, &h, "/hub/home").await;
    assert!(
        status.is_redirection(),
        "erin's session still works: {status}"
    );
    let (status, _) = call(&h, "GET", "/hub/api/user", "", &erin_token).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "erin's token still works");
    assert_eq!(
        log_in(&h, "erin", GOOD).await.unwrap_err(),
        "Your account has been blocked. Please contact your administrator."
    );
    // An approved account cannot be discarded (it goes with its user); a pending one can.
    assert_eq!(act("finn", "discard", xsrf.clone()).await, StatusCode::OK);
    assert_eq!(status_of(&h, "finn"), None);
    assert_eq!(
        log_in(&h, "finn", GOOD).await.unwrap_err(),
        "Invalid username or password"
    );
    assert_eq!(act("nobody", "approve", xsrf).await, StatusCode::NOT_FOUND);
    // The name is free again.
    assert_eq!(sign_up(&h, "finn", GOOD).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_lockout_outlives_a_restart_of_the_hub() {
    let extra = format!("{NATIVE}allowed_failed_logins = 3\nseconds_before_next_try = 600\n");
    let h = hub("/", &extra).await;
    assert_eq!(sign_up(&h, "gwen", GOOD).await.0, StatusCode::OK);
    h.state
        .db
        .native()
        .decide(&u("gwen"), AccountStatus::Approved, &u("gwen"))
        .unwrap();
    for _ in 0..3 {
        assert_eq!(
            log_in(&h, "gwen", "wrong-password-here").await.unwrap_err(),
            "Invalid username or password"
        );
    }
    let locked = log_in(&h, "gwen", GOOD).await.unwrap_err();
    assert!(
        locked.starts_with("Too many failed attempts. Try again in"),
        "{locked}"
    );
    let until = h.state.db.native().locked_until(&u("gwen"), now()).unwrap();
    assert!(until.is_some_and(|t| t > now() + 590), "{until:?}");
    // A new hub on the same database (and cookie secret): still locked.
    let restarted = hub_in(h.dir.clone(), "/", &extra).await;
    let locked = log_in(&restarted, "gwen", GOOD).await.unwrap_err();
    assert!(locked.starts_with("Too many failed attempts"), "{locked}");
    // Names that do not exist are never recorded, yet answered just as those that do:
    // a lockout does not tell which names exist.
    let mut said = Vec::new();
    for _ in 0..4 {
        said.push(log_in(&restarted, "ghost", GOOD).await.unwrap_err());
    }
    assert_eq!(said[..3], ["Invalid username or password"; 3]);
    assert!(
        said[3].starts_with("Too many failed attempts. Try again in"),
        "{said:?}"
    );
    let ghost = restarted.state.db.native().locked_until(&u("ghost"), 0);
    assert_eq!(ghost.unwrap(), None);
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The second factor: set up from the page (a QR code and the key, confirmed with a
/// code), then each login needs the current code, good once; a wrong or missing code is a
/// wrong login; it goes off only with the password.
#[tokio::test]
async fn two_factor_sign_in_is_set_up_required_and_turned_off() {
    let extra = format!("{NATIVE}[auth.native]\nallow_2fa = true\n");
    let h = hub("/", &extra).await;
    assert_eq!(sign_up(&h, "hana", GOOD).await.0, StatusCode::OK);
    h.state
        .db
        .native()
        .decide(&u("hana"), AccountStatus::Approved, &u("hana"))
        .unwrap();
    let c = log_in(&h, "hana", GOOD).await.unwrap();
    let (_, home) = get(&c, &h, "/hub/home").await;
    assert!(home.contains("href=\"/hub/two-factor\""), "{home}");
    let (status, page, _) = submit(&c, &h, "/hub/two-factor", &[("action", "begin")]).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("<svg"), "a QR code: {page}");
    let at = page.find("data-secret=\"").unwrap() + 13;
    let secret = page[at..].split('"').next().unwrap().to_owned();
    let now = || u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp()).unwrap();
    let code = |t: u64| sudohub::auth::totp::code_at(&secret, t).unwrap();
    // A wrong code does not turn it on; the right one does.
    let wrong = if code(now()) == "000000" {
        "111111"
    } else {
        "000000"
    };
    let (status, body) = {
        let (_, p) = get(&c, &h, "/hub/two-factor").await;
        let xsrf = xsrf_of(&p);
        let r = c
            .post(url(&h, "/hub/two-factor"))
            .form(&[
                ("_xsrf", xsrf.as_str()),
                ("action", "confirm"),
                ("code", wrong),
            ])
            .send()
            .await
            .unwrap();
        (r.status(), r.text().await.unwrap())
    };
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(log_in(&h, "hana", GOOD).await.is_ok(), "still off");
    let (status, body, _) = submit(
        &c,
        &h,
        "/hub/two-factor",
        &[("action", "confirm"), ("code", &code(now()))],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("Two-factor sign-in is on."), "{body}");
    let acct = h.state.db.native().get(&u("hana")).unwrap().unwrap();
    assert_eq!(acct.totp.as_deref(), Some(secret.as_str()));

    // Now each login needs a code: none, a wrong one, or one already used are refused.
    let (_, form) = get(&browser(), &h, "/hub/login").await;
    assert!(form.contains("name=\"otp\""), "{form}");
    assert_eq!(
        log_in(&h, "hana", GOOD).await.unwrap_err(),
        "Invalid username or password"
    );
    let hub_ref = &h;
    let with_code = |c: String| async move {
        let b = browser();
        let (status, _, loc) = submit(
            &b,
            hub_ref,
            "/hub/login",
            &[("username", "hana"), ("password", GOOD), ("otp", &c)],
        )
        .await;
        (status, loc)
    };
    assert_eq!(with_code(wrong.into()).await.0, StatusCode::FORBIDDEN);
    // The code confirmed at set-up was taken: the next step's code is the first good one.
    let next = code(now() + 30);
    assert_eq!(with_code(next.clone()).await.1, "/hub/spawn");
    assert_eq!(
        with_code(next).await.0,
        StatusCode::FORBIDDEN,
        "a code is good once"
    );

    // Off only with the password.
    let (status, body, _) = submit(
        &c,
        &h,
        "/hub/two-factor",
        &[("action", "off"), ("password", "not-the-password")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body, _) = submit(
        &c,
        &h,
        "/hub/two-factor",
        &[("action", "off"), ("password", GOOD)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(log_in(&h, "hana", GOOD).await.is_ok());
}

/// An account of the hub's own is bound to the Unix account made or given for it: a Unix
/// account of the same name that is not that one (made later, for someone else) does not
/// let it in, right password or not, until an admin gives it a password (binding it).
#[tokio::test]
async fn a_unix_account_of_the_name_that_is_not_the_accounts_keeps_it_out() {
    let h = hub("/", NATIVE).await;
    let boss = admin(&h).await;
    // "daemon" stands in for a Unix account that appeared after the sign-up (sign-up
    // itself refuses names of existing accounts, so the row is written directly).
    let hash = sudohub::auth::password::hash(&sudohub_protocol::Secret::new(GOOD).unwrap())
        .await
        .unwrap();
    let db = h.state.db.native();
    db.sign_up(&u("daemon"), &hash, None, AccountStatus::Approved)
        .unwrap();
    assert_eq!(
        log_in(&h, "daemon", GOOD).await.unwrap_err(),
        "Your account cannot sign in: its name belongs to another account on this machine. Please contact your administrator."
    );
    assert_eq!(
        log_in(&h, "daemon", "wrong-password-here")
            .await
            .unwrap_err(),
        "Invalid username or password",
        "said only to whoever knows the password"
    );
    // An admin giving it a password vouches for it: bound, it signs in.
    let (status, body, _) = submit(
        &boss,
        &h,
        "/hub/change-password/daemon",
        &[("password", GOOD), ("password_again", GOOD)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let uid = nix::unistd::User::from_name("daemon").unwrap().unwrap().uid;
    let acct = h.state.db.native().get(&u("daemon")).unwrap().unwrap();
    assert_eq!(acct.unix_uid, Some(uid.as_raw()));
    assert!(log_in(&h, "daemon", GOOD).await.is_ok());
}
