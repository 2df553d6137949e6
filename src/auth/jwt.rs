//! API tokens: HS256 JWTs with the configured secret, issuer and audience.
//!
//! The signing key rotates (see `crate::secrets`): each token names its key
//! in the `kid` header; new tokens use the current key, and tokens signed
//! with the previous one stay valid until its rotation window ends.
//!
//! Verification pins the algorithm to HS256 (so `alg: none` and every other
//! algorithm are refused), and checks the signature, `exp`, `nbf`, `iss` and
//! `aud` with the configured leeway (at most 30 s, enforced by the settings).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use hotswap_actors::domain::{Role, TenantId, UserRecord};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::settings::AuthSettings;

/// The claims of an API token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    /// The user's id.
    pub sub: Uuid,
    pub username: String,
    pub email: String,
    pub roles: Vec<Role>,
    pub tenant_id: TenantId,
    /// The token's own id: logout revokes it.
    pub jti: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
    /// A fingerprint of the user's password hash and token generation when
    /// the token was issued: resetting the password or disabling the user
    /// changes it, and so refuses every token issued before. Tokens without
    /// one are refused.
    #[serde(default)]
    pub pwv: String,
}

/// What `pwv` holds for a user: a bcrypt hash is salted afresh at every
/// reset, so this changes with every reset, even to the same password, and
/// with every disabling (`UserRecord::token_generation`). 64 bits of a digest
/// of a salted hash: nothing to guess passwords with. Generation 0 digests
/// the hash alone, as tokens issued before generations existed do.
pub fn password_fingerprint(user: &UserRecord) -> String {
    let bound = match user.token_generation {
        0 => format!("hotswap-token-password-binding:{}", user.password_hash),
        n => format!("hotswap-token-password-binding:{}:{n}", user.password_hash),
    };
    crate::crypto::sha256_hex(bound.as_bytes())[..16].to_string()
}

impl Claims {
    pub fn expires_at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.exp, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

/// Why a token was refused; each becomes a 401 with this text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued for another service")]
    WrongIssuerOrAudience,
    #[error("the token's signature or algorithm is not accepted")]
    BadSignature,
    /// Its `kid` names neither the current key nor the previous one.
    #[error("the token names a signing key this service does not hold")]
    UnknownKey,
    #[error("the token is malformed")]
    Malformed,
    #[error("the token's lifetime exceeds the configured maximum")]
    LifetimeTooLong,
    #[error("the token has been revoked")]
    Revoked,
    #[error("the token's user no longer exists or is disabled")]
    UnknownUser,
    #[error("the token's tenant was deleted")]
    TenantDeleted,
    /// The store could not say whether the token is still good (503, not 401).
    #[error("the store is unavailable")]
    Unavailable,
}

pub struct IssuedToken {
    pub token: String,
    pub claims: Claims,
}

/// Tokens verified recently, so that a client's every request does not
/// repeat the HMAC and the JSON decoding. Keyed by the signature segment,
/// holding the whole token: a hit needs the very same token, byte for byte.
/// Lifetimes are checked again on every hit.
struct Verified {
    by_signature: RwLock<HashMap<Box<str>, Remembered>>,
}

/// The whole token, its claims, and the id of the key that verified it (the
/// current key's for a token that names none, so that a rotation cannot leave
/// it verified by a key that has left the ring).
type Remembered = (Box<str>, Arc<Claims>, Option<Box<str>>);

/// The most tokens remembered; past that, expired ones are dropped, or all.
const VERIFIED_CAPACITY: usize = 10_000;

impl Verified {
    fn get(&self, token: &str) -> Option<(Arc<Claims>, Option<Box<str>>)> {
        let signature = token.rsplit('.').next()?;
        let map = self.by_signature.read();
        let (full, claims, kid) = map.get(signature)?;
        (full.as_ref() == token).then(|| (claims.clone(), kid.clone()))
    }

    fn insert(&self, token: &str, claims: Arc<Claims>, kid: Option<&str>, now: i64) {
        let Some(signature) = token.rsplit('.').next() else { return };
        let mut map = self.by_signature.write();
        if map.len() >= VERIFIED_CAPACITY {
            map.retain(|_, (_, c, _)| c.exp > now);
            if map.len() >= VERIFIED_CAPACITY {
                map.clear();
            }
        }
        map.insert(signature.into(), (token.into(), claims, kid.map(Into::into)));
    }

    fn clear(&self) {
        self.by_signature.write().clear();
    }
}

/// One HS256 key with its id.
struct Key {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl Key {
    fn new(kid: &str, secret: &[u8]) -> Result<Key, String> {
        Ok(Key {
            kid: kid.to_string(),
            encoding: EncodingKey::from_secret(secret).map_err(|e| format!("JWT signing key: {e}"))?,
            decoding: DecodingKey::from_secret(secret).map_err(|e| format!("JWT signing key: {e}"))?,
        })
    }
}

/// The current key, and the previous one until its window ends (unix milliseconds).
struct KeyRing {
    current: Key,
    previous: Option<(Key, i64)>,
}

impl KeyRing {
    /// Whether `kid` names a key of the ring, usable or not (the previous
    /// key past its window still counts: reloading would not bring it back).
    fn holds(&self, kid: Option<&str>) -> bool {
        kid.is_none_or(|k| k == self.current.kid || self.previous.as_ref().is_some_and(|(p, _)| p.kid == k))
    }

    /// The key that verifies a token naming `kid` (the current one when it
    /// names none: tokens from before key ids).
    fn decoding(&self, kid: Option<&str>, now_ms: i64) -> Option<&DecodingKey> {
        match kid {
            None => Some(&self.current.decoding),
            Some(k) if k == self.current.kid => Some(&self.current.decoding),
            Some(k) => {
                self.previous.as_ref().filter(|(p, until)| p.kid == k && now_ms < *until).map(|(p, _)| &p.decoding)
            }
        }
    }
}

/// The keys to install after a rotation: the current secret, and the
/// previous one with the end of its window.
pub struct SigningKeys<'a> {
    pub current: (&'a str, &'a [u8]),
    pub previous: Option<(&'a str, &'a [u8], DateTime<Utc>)>,
}

/// Issues and verifies tokens. Holds the keys; `Debug` shows neither.
pub struct TokenService {
    keys: RwLock<KeyRing>,
    validation: Validation,
    issuer: String,
    audience: String,
    lifetime: chrono::Duration,
    leeway: i64,
    verified: Verified,
}

impl TokenService {
    /// Tokens are issued for `token_lifetime`; one claiming longer was not
    /// issued by this configuration (or by a leaked key) and is refused.
    fn lifetime_allowed(&self, claims: &Claims) -> bool {
        claims.exp.saturating_sub(claims.iat) <= self.lifetime.num_seconds()
    }
}

impl std::fmt::Debug for TokenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenService").field("issuer", &self.issuer).field("audience", &self.audience).finish()
    }
}

impl TokenService {
    pub fn new(settings: &AuthSettings) -> Result<TokenService, String> {
        let secret = settings.jwt_secret.expose().as_bytes();
        let current = Key::new(Self::CONFIGURED_KID, secret).map_err(|e| format!("auth.jwt_secret: {e}"))?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.leeway = settings.token_leeway.as_secs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        validation.set_issuer(&[&settings.jwt_issuer]);
        validation.set_audience(&[&settings.jwt_audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        Ok(TokenService {
            keys: RwLock::new(KeyRing { current, previous: None }),
            validation,
            issuer: settings.jwt_issuer.clone(),
            audience: settings.jwt_audience.clone(),
            lifetime: chrono::Duration::from_std(settings.token_lifetime).map_err(|e| e.to_string())?,
            leeway: settings.token_leeway.as_secs() as i64,
            verified: Verified { by_signature: RwLock::new(HashMap::new()) },
        })
    }

    /// The key id of `auth.jwt_secret` until the secret store's keys are installed.
    pub const CONFIGURED_KID: &'static str = "configured";

    /// Makes `keys.current` sign new tokens; tokens naming `keys.previous`
    /// verify until its window ends. Called at start-up and after every rotation.
    pub fn install(&self, keys: SigningKeys<'_>) -> Result<(), String> {
        let current = Key::new(keys.current.0, keys.current.1)?;
        let previous = match keys.previous {
            Some((kid, secret, until)) => Some((Key::new(kid, secret)?, until.timestamp_millis())),
            None => None,
        };
        *self.keys.write() = KeyRing { current, previous };
        // A remembered token was verified against the old ring: an emergency
        // rotation must refuse it at once, not when it leaves the cache.
        self.verified.clear();
        Ok(())
    }

    /// The id of the key new tokens are signed with.
    pub fn current_kid(&self) -> String {
        self.keys.read().current.kid.clone()
    }

    /// A fresh token for `user`, valid from now for the configured lifetime.
    pub fn issue(&self, user: &UserRecord, now: DateTime<Utc>) -> Result<IssuedToken, String> {
        let iat = now.timestamp();
        let claims = Claims {
            sub: user.id,
            username: user.username.clone(),
            email: user.email.clone(),
            roles: user.roles.clone(),
            tenant_id: user.tenant_id,
            jti: Uuid::new_v4().to_string(),
            iat,
            nbf: iat,
            exp: (now + self.lifetime).timestamp(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            pwv: password_fingerprint(user),
        };
        let token = self.sign(&claims)?;
        Ok(IssuedToken { token, claims })
    }

    /// Signs arbitrary claims with the service's key (tests forge tokens with it).
    pub fn sign(&self, claims: &Claims) -> Result<String, String> {
        let keys = self.keys.read();
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(keys.current.kid.clone());
        jsonwebtoken::encode(&header, claims, &keys.current.encoding).map_err(|e| e.to_string())
    }

    /// Checks signature, algorithm, lifetime, issuer and audience. Revocation
    /// needs the store: see [`super::principal`].
    pub fn verify(&self, token: &str) -> Result<Arc<Claims>, TokenError> {
        let now = Utc::now().timestamp();
        if let Some((claims, kid)) = self.verified.get(token) {
            // Its key may have left the ring since.
            if self.keys.read().decoding(kid.as_deref(), Utc::now().timestamp_millis()).is_none() {
                return Err(TokenError::BadSignature);
            }
            if now > claims.exp.saturating_add(self.leeway) {
                return Err(TokenError::Expired);
            }
            if now < claims.nbf.saturating_sub(self.leeway) {
                return Err(TokenError::NotYetValid);
            }
            return Ok(claims);
        }
        let kid = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?.kid;
        let (decoded, verified_by) = {
            let keys = self.keys.read();
            let Some(key) = keys.decoding(kid.as_deref(), Utc::now().timestamp_millis()) else {
                return Err(if keys.holds(kid.as_deref()) { TokenError::BadSignature } else { TokenError::UnknownKey });
            };
            let verified_by = kid.clone().unwrap_or_else(|| keys.current.kid.clone());
            (jsonwebtoken::decode::<Claims>(token, key, &self.validation), verified_by)
        };
        match decoded {
            Ok(data) if !self.lifetime_allowed(&data.claims) => Err(TokenError::LifetimeTooLong),
            Ok(data) => {
                let claims = Arc::new(data.claims);
                self.verified.insert(token, claims.clone(), Some(&verified_by), now);
                Ok(claims)
            }
            Err(e) => Err(match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::ImmatureSignature => TokenError::NotYetValid,
                ErrorKind::InvalidIssuer | ErrorKind::InvalidAudience => TokenError::WrongIssuerOrAudience,
                ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                    TokenError::BadSignature
                }
                _ => TokenError::Malformed,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::crypto::Secret;

    fn settings(secret: &str) -> AuthSettings {
        AuthSettings {
            jwt_secret: Secret::new(secret),
            jwt_issuer: "HotSwap".into(),
            jwt_audience: "HotSwapApi".into(),
            token_lifetime: Duration::from_secs(3600),
            token_leeway: Duration::from_secs(30),
            bcrypt_cost: 4,
            max_failed_logins: 5,
            max_failed_logins_per_account: 50,
            lockout_duration: Duration::from_secs(900),
            min_password_length: 12,
            demo_users: false,
        }
    }

    fn user() -> UserRecord {
        UserRecord {
            id: Uuid::new_v4(),
            tenant_id: Uuid::new_v4(),
            username: "ops".into(),
            email: "ops@example.com".into(),
            full_name: String::new(),
            password_hash: String::new(),
            roles: vec![Role::Deployer],
            is_active: true,
            failed_login_attempts: 0,
            lockout_end: None,
            created_at: Utc::now(),
            last_login_at: None,
            token_generation: 0,
        }
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn issued_tokens_verify_and_carry_the_claims() {
        let service = TokenService::new(&settings(SECRET)).unwrap();
        let u = user();
        let issued = service.issue(&u, Utc::now()).unwrap();
        let claims = service.verify(&issued.token).unwrap();
        assert_eq!(*claims, issued.claims);
        // Again, from the cache of verified tokens.
        assert_eq!(*service.verify(&issued.token).unwrap(), issued.claims);
        assert_eq!((claims.sub, claims.tenant_id, claims.roles.clone()), (u.id, u.tenant_id, vec![Role::Deployer]));
        assert!(!format!("{service:?}").contains(SECRET));
    }

    #[test]
    fn leeway_applies_to_expiry_but_no_further() {
        let service = TokenService::new(&settings(SECRET)).unwrap();
        let mut claims = service.issue(&user(), Utc::now()).unwrap().claims;
        claims.exp = Utc::now().timestamp() - 10;
        assert!(service.verify(&service.sign(&claims).unwrap()).is_ok(), "within the leeway");
        claims.exp = Utc::now().timestamp() - 60;
        assert_eq!(service.verify(&service.sign(&claims).unwrap()), Err(TokenError::Expired));
        let mut early = service.issue(&user(), Utc::now()).unwrap().claims;
        early.nbf = Utc::now().timestamp() + 120;
        assert_eq!(service.verify(&service.sign(&early).unwrap()), Err(TokenError::NotYetValid));
    }

    #[test]
    fn remembered_tokens_still_expire_and_must_match_exactly() {
        let mut s = settings(SECRET);
        s.token_leeway = Duration::ZERO;
        let service = TokenService::new(&s).unwrap();
        let mut claims = service.issue(&user(), Utc::now()).unwrap().claims;
        claims.exp = Utc::now().timestamp() + 1;
        let token = service.sign(&claims).unwrap();
        assert!(service.verify(&token).is_ok());
        // The same signature after another payload is not a hit.
        let mut parts: Vec<&str> = token.split('.').collect();
        let other = service.issue(&user(), Utc::now()).unwrap().token;
        parts[1] = other.split('.').nth(1).unwrap();
        assert_eq!(service.verify(&parts.join(".")), Err(TokenError::BadSignature));
        std::thread::sleep(Duration::from_millis(2100));
        assert_eq!(service.verify(&token), Err(TokenError::Expired));
    }

    #[test]
    fn after_a_rotation_old_tokens_verify_until_the_window_ends() {
        let service = TokenService::new(&settings(SECRET)).unwrap();
        let v1 = b"first-rotated-secret-of-32-bytes!!".as_slice();
        let v2 = b"second-rotated-secret-of-32-bytes!".as_slice();
        service.install(SigningKeys { current: ("v1", v1), previous: None }).unwrap();
        let old = service.issue(&user(), Utc::now()).unwrap().token;
        assert_eq!(jsonwebtoken::decode_header(&old).unwrap().kid.as_deref(), Some("v1"));
        assert!(service.verify(&old).is_ok());

        let window_end = Utc::now() + chrono::Duration::hours(1);
        service.install(SigningKeys { current: ("v2", v2), previous: Some(("v1", v1, window_end)) }).unwrap();
        let new = service.issue(&user(), Utc::now()).unwrap().token;
        assert_eq!(jsonwebtoken::decode_header(&new).unwrap().kid.as_deref(), Some("v2"), "new tokens use the new key");
        assert!(service.verify(&new).is_ok());
        assert!(service.verify(&old).is_ok(), "the previous key is good within the window");

        // The window ends: the old token is refused, even from the cache.
        let ended = Utc::now() - chrono::Duration::seconds(1);
        service.install(SigningKeys { current: ("v2", v2), previous: Some(("v1", v1, ended)) }).unwrap();
        assert_eq!(service.verify(&old), Err(TokenError::BadSignature));
        assert!(service.verify(&new).is_ok());
        // A token naming an unknown key, or the right key id with another secret, is refused.
        let other = TokenService::new(&settings("another-secret-of-thirty-two-bytes")).unwrap();
        other.install(SigningKeys { current: ("v2", b"a-different-secret-with-32-bytes!!"), previous: None }).unwrap();
        assert_eq!(service.verify(&other.issue(&user(), Utc::now()).unwrap().token), Err(TokenError::BadSignature));
        // A key this service has not loaded yet (rotated on another instance) is told apart, for a reload.
        let ahead = TokenService::new(&settings(SECRET)).unwrap();
        ahead.install(SigningKeys { current: ("v3", b"third-rotated-secret-of-32-bytes!!"), previous: None }).unwrap();
        assert_eq!(service.verify(&ahead.issue(&user(), Utc::now()).unwrap().token), Err(TokenError::UnknownKey));
    }

    #[test]
    fn an_emergency_rotation_refuses_remembered_tokens_that_name_no_key() {
        let service = TokenService::new(&settings(SECRET)).unwrap();
        let claims = service.issue(&user(), Utc::now()).unwrap().claims;
        // A token from before key ids: signed with the configured secret, no `kid`.
        let keys = service.keys.read();
        let bare = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &keys.current.encoding).unwrap();
        drop(keys);
        assert!(service.verify(&bare).is_ok());
        assert!(service.verify(&bare).is_ok(), "now from the cache");
        // The configured secret leaked: rotate with no window for it.
        service
            .install(SigningKeys { current: ("v9", b"emergency-rotated-secret-32-bytes!"), previous: None })
            .unwrap();
        assert_eq!(service.verify(&bare), Err(TokenError::BadSignature));
    }

    #[test]
    fn tokens_claiming_a_longer_life_than_configured_are_refused() {
        let service = TokenService::new(&settings(SECRET)).unwrap();
        let mut claims = service.issue(&user(), Utc::now()).unwrap().claims;
        assert!(service.verify(&service.sign(&claims).unwrap()).is_ok());
        claims.exp = claims.iat + 10 * 365 * 24 * 3600;
        assert_eq!(service.verify(&service.sign(&claims).unwrap()), Err(TokenError::LifetimeTooLong));
    }

    #[test]
    fn tokens_carry_a_fingerprint_of_the_password_hash_and_token_generation() {
        let service = TokenService::new(&settings(SECRET)).unwrap();
        let mut u = user();
        u.password_hash = "$2b$04$first".into();
        let before = service.issue(&u, Utc::now()).unwrap().claims.pwv;
        assert_eq!(before, password_fingerprint(&u));
        assert!(!before.contains("first"));
        // Generation 0 is the hash alone: tokens issued before generations
        // existed stay valid.
        let hash_alone = crate::crypto::sha256_hex(b"hotswap-token-password-binding:$2b$04$first");
        assert_eq!(before, hash_alone[..16]);
        let mut reset = u.clone();
        reset.password_hash = "$2b$04$second".into();
        assert_ne!(before, password_fingerprint(&reset));
        let mut disabled_once = u.clone();
        disabled_once.token_generation = 1;
        assert_ne!(before, password_fingerprint(&disabled_once));
    }

    #[test]
    fn other_keys_issuers_and_audiences_are_refused() {
        let service = TokenService::new(&settings(SECRET)).unwrap();
        let other = TokenService::new(&settings("another-secret-of-thirty-two-bytes")).unwrap();
        let token = other.issue(&user(), Utc::now()).unwrap().token;
        assert_eq!(service.verify(&token), Err(TokenError::BadSignature));
        let mut claims = service.issue(&user(), Utc::now()).unwrap().claims;
        claims.iss = "someone-else".into();
        assert_eq!(service.verify(&service.sign(&claims).unwrap()), Err(TokenError::WrongIssuerOrAudience));
        claims.iss = "HotSwap".into();
        claims.aud = "another-api".into();
        assert_eq!(service.verify(&service.sign(&claims).unwrap()), Err(TokenError::WrongIssuerOrAudience));
        assert_eq!(service.verify("not.a.token"), Err(TokenError::Malformed));
        assert_eq!(service.verify(""), Err(TokenError::Malformed));
    }
}
