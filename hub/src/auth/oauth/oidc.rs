//! OpenID Connect (any provider, Google): discovery, the authorization code flow with
//! PKCE, `state` and `nonce`, the ID token verified by the `openidconnect` crate against
//! the provider's JWKS (signature, issuer, audience, expiry, nonce, access-token hash),
//! then the user-info endpoint for the rest of the claims (groups).

use std::time::{Duration, Instant};

use openidconnect::core::{CoreAuthenticationFlow, CoreGenderClaim, CoreProviderMetadata};
use openidconnect::{
    AccessTokenHash, AdditionalClaims, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RequestTokenError, Scope, TokenResponse, UserInfoClaims,
};
use serde_json::{Map, Value};

use super::http::{Http, HttpError};
use super::{Identity, OAuthError, Started};

/// How long the provider's metadata and keys are used before they are fetched again
/// (keys rotate).
const METADATA_TTL: Duration = Duration::from_secs(600);

/// After a failed discovery, sign-ins are told "unavailable" at once for this long
/// instead of each waiting for the provider again.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// The claims beyond the standard ones (groups, Google's `hd`), as they come.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
struct Extra(Map<String, Value>);

impl AdditionalClaims for Extra {}

/// One OpenID Connect provider.
pub struct Oidc {
    issuer: IssuerUrl,
    client_id: ClientId,
    secret: Option<ClientSecret>,
    redirect: RedirectUrl,
    scopes: Vec<String>,
    metadata: tokio::sync::Mutex<Option<(Instant, CoreProviderMetadata)>>,
    failed: std::sync::Mutex<Option<Instant>>,
}

impl Oidc {
    /// The provider at `issuer`, for this client.
    pub fn new(
        issuer: &str,
        client_id: &str,
        secret: Option<String>,
        redirect: &str,
        scopes: Vec<String>,
    ) -> Result<Self, String> {
        Ok(Self {
            issuer: IssuerUrl::new(issuer.to_owned())
                .map_err(|e| format!("[auth.oauth] issuer: {e}"))?,
            client_id: ClientId::new(client_id.to_owned()),
            secret: secret.map(ClientSecret::new),
            redirect: RedirectUrl::new(redirect.to_owned())
                .map_err(|e| format!("[auth.oauth] oauth_callback_url: {e}"))?,
            scopes,
            metadata: tokio::sync::Mutex::new(None),
            failed: std::sync::Mutex::new(None),
        })
    }

    async fn client(&self, http: &reqwest::Client) -> Result<OidcClient, OAuthError> {
        let mut cached = self.metadata.lock().await;
        let meta = match &*cached {
            Some((at, m)) if at.elapsed() < METADATA_TTL => m.clone(),
            _ if self
                .failed
                .lock()
                .map(|f| f.is_some_and(|at| at.elapsed() < RETRY_AFTER))
                .unwrap_or(false) =>
            {
                return Err(OAuthError::Unavailable(format!(
                    "discovery at {} failed moments ago",
                    self.issuer.as_str()
                )));
            }
            _ => {
                let hc = Http(http.clone());
                let m = CoreProviderMetadata::discover_async(self.issuer.clone(), &hc)
                    .await
                    .map_err(|e| {
                        if let Ok(mut f) = self.failed.lock() {
                            *f = Some(Instant::now());
                        }
                        OAuthError::Unavailable(format!(
                            "discovery at {}: {}",
                            self.issuer.as_str(),
                            chain(&e)
                        ))
                    })?;
                *cached = Some((Instant::now(), m.clone()));
                m
            }
        };
        Ok(
            OidcClient::from_provider_metadata(meta, self.client_id.clone(), self.secret.clone())
                .set_redirect_uri(self.redirect.clone()),
        )
    }

    /// Discovery: the issuer's metadata and keys, fetched now.
    pub async fn probe(&self, http: &reqwest::Client) -> Result<String, OAuthError> {
        self.client(http).await?;
        Ok(format!("discovery at {} answers", self.issuer.as_str()))
    }

    /// The provider's authorization URL for a new sign-in.
    pub async fn begin(&self, http: &reqwest::Client) -> Result<Started, OAuthError> {
        let client = self.client(http).await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut req = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for s in &self.scopes {
            req = req.add_scope(Scope::new(s.clone()));
        }
        let (url, state, nonce) = req.set_pkce_challenge(challenge).url();
        Ok(Started {
            url: url.to_string(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            verifier: verifier.secret().clone(),
        })
    }

    /// Exchanges `code` and verifies what comes back: the signed-in identity.
    pub async fn finish(
        &self,
        http: &reqwest::Client,
        code: &str,
        nonce: &str,
        verifier: &str,
    ) -> Result<Identity, OAuthError> {
        let client = self.client(http).await?;
        let hc = Http(http.clone());
        let token = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| OAuthError::Unavailable(format!("no token endpoint: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_owned()))
            .request_async(&hc)
            .await
            .map_err(token_error)?;
        let id_token = token
            .id_token()
            .ok_or_else(|| OAuthError::Rejected("the provider sent no ID token".into()))?;
        let check = client.id_token_verifier();
        let claims = id_token
            .claims(&check, &Nonce::new(nonce.to_owned()))
            .map_err(|e| OAuthError::Rejected(format!("ID token: {e}")))?;
        if let Some(expected) = claims.access_token_hash() {
            let bad = |e: &dyn std::fmt::Display| OAuthError::Rejected(format!("at_hash: {e}"));
            let alg = id_token.signing_alg().map_err(|e| bad(&e))?;
            let key = id_token.signing_key(&check).map_err(|e| bad(&e))?;
            let actual =
                AccessTokenHash::from_token(token.access_token(), alg, key).map_err(|e| bad(&e))?;
            if actual != *expected {
                return Err(bad(&"does not match the access token"));
            }
        }
        let subject = claims.subject().clone();
        let mut tokens = super::token_fields(&token);
        tokens.insert("id_token".into(), Value::String(id_token.to_string()));
        let mut all = object(serde_json::to_value(claims));
        if let Ok(req) = client.user_info(token.access_token().clone(), Some(subject.clone())) {
            let info: UserInfoClaims<Extra, CoreGenderClaim> = req
                .request_async(&hc)
                .await
                .map_err(|e| OAuthError::Rejected(format!("user info: {}", chain(&e))))?;
            // The verified ID token's claims win; user info only adds what it lacks.
            for (k, v) in object(serde_json::to_value(&info)) {
                all.entry(k).or_insert(v);
            }
        }
        Ok(Identity {
            subject: subject.to_string(),
            claims: all,
            groups: Vec::new(),
            tokens,
        })
    }
}

/// The client, with the ID token's claims beyond the standard ones kept ([`Extra`]):
/// `groups` or `hd` may be only there (Keycloak, Entra ID).
type OidcClient = openidconnect::Client<
    Extra,
    openidconnect::core::CoreAuthDisplay,
    CoreGenderClaim,
    openidconnect::core::CoreJweContentEncryptionAlgorithm,
    openidconnect::core::CoreJsonWebKey,
    openidconnect::core::CoreAuthPrompt,
    openidconnect::StandardErrorResponse<openidconnect::core::CoreErrorResponseType>,
    openidconnect::StandardTokenResponse<
        openidconnect::IdTokenFields<
            Extra,
            openidconnect::EmptyExtraTokenFields,
            CoreGenderClaim,
            openidconnect::core::CoreJweContentEncryptionAlgorithm,
            openidconnect::core::CoreJwsSigningAlgorithm,
        >,
        openidconnect::core::CoreTokenType,
    >,
    openidconnect::core::CoreTokenIntrospectionResponse,
    openidconnect::core::CoreRevocableToken,
    openidconnect::core::CoreRevocationErrorResponse,
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

fn object(v: Result<Value, serde_json::Error>) -> Map<String, Value> {
    match v {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// An error and its causes, one line.
pub(super) fn chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

/// A failed code exchange: the provider unreachable, or its refusal (a code used twice,
/// a wrong verifier or secret).
pub(super) fn token_error<T: openidconnect::ErrorResponse + 'static>(
    e: RequestTokenError<HttpError, T>,
) -> OAuthError {
    match e {
        RequestTokenError::Request(h) => OAuthError::Unavailable(format!("token endpoint: {h}")),
        RequestTokenError::ServerResponse(r) => OAuthError::Rejected(format!(
            "the provider refused the code: {}",
            serde_json::to_string(&r).unwrap_or_default()
        )),
        RequestTokenError::Parse(p, _) => {
            OAuthError::Rejected(format!("token endpoint's answer: {p}"))
        }
        RequestTokenError::Other(m) => OAuthError::Rejected(format!("token endpoint: {m}")),
    }
}
