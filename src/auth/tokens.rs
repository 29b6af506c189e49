//! Access tokens (JWT, HS256, 15 minutes) and opaque refresh tokens.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::domain::role::Role;

pub const ACCESS_TOKEN_SECONDS: i64 = 15 * 60;
pub const REFRESH_TOKEN_DAYS: i64 = 30;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    pub role: Role,
    /// The applicant's organisation (membership never changes after sign-up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<i64>,
    pub iat: i64,
    pub exp: i64,
    /// The account's session generation when the token was issued; a
    /// password reset starts a new one and older tokens stop working
    /// (`auth::sessions`). Absent means 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub generation: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// Why an access token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Well-formed and signed by us, but past its `exp`: refresh it.
    Expired,
    /// Not a token this server issued (bad signature, algorithm, shape).
    Invalid,
}

#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl TokenKeys {
    pub fn new(secret: &[u8]) -> Self {
        // Pin the algorithm: a token claiming any other `alg` is refused.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "iat", "sub"]);
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// Returns the token and its lifetime in seconds.
    pub fn issue(
        &self,
        user_id: i64,
        role: Role,
        organization_id: Option<i64>,
        generation: i64,
        now_seconds: i64,
    ) -> (String, i64) {
        let claims = Claims {
            sub: user_id.to_string(),
            role,
            org: organization_id,
            iat: now_seconds,
            exp: now_seconds + ACCESS_TOKEN_SECONDS,
            generation,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 encoding cannot fail");
        (token, ACCESS_TOKEN_SECONDS)
    }

    /// The claims of a token this server issued and that has not expired.
    pub fn verify(&self, token: &str) -> Result<Claims, Rejection> {
        use jsonwebtoken::errors::ErrorKind;
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|error| match error.kind() {
                // Reported only once the signature checked out.
                ErrorKind::ExpiredSignature => Rejection::Expired,
                _ => Rejection::Invalid,
            })
    }
}

/// A new opaque refresh token (256 random bits, hex).
pub fn new_refresh_token() -> String {
    random_hex(32)
}

/// A new login family id.
pub fn new_family() -> String {
    random_hex(16)
}

fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buffer);
    hex::encode(buffer)
}

/// Refresh tokens are high-entropy, so a fast hash suffices to make a stolen
/// database useless for replay.
pub fn hash_refresh_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_token_verifies_with_claims() {
        let keys = TokenKeys::new(b"test-secret-test-secret-test-secret");
        let now = chrono::Utc::now().timestamp();
        let (token, lifetime) = keys.issue(42, Role::Supporter, Some(7), 3, now);
        assert_eq!(lifetime, 900);
        let claims = keys.verify(&token).unwrap();
        assert_eq!(claims.generation, 3);
        assert_eq!(claims.sub, "42");
        assert_eq!(claims.role, Role::Supporter);
        assert_eq!(claims.org, Some(7));
        assert_eq!(claims.exp - claims.iat, 900);
    }

    #[test]
    fn expired_wrong_key_and_other_algorithms_are_refused() {
        let keys = TokenKeys::new(b"test-secret-test-secret-test-secret");
        let long_ago = chrono::Utc::now().timestamp() - 3600;
        let (expired, _) = keys.issue(1, Role::Admin, None, 0, long_ago);
        assert_eq!(keys.verify(&expired).unwrap_err(), Rejection::Expired);

        let other = TokenKeys::new(b"another-secret-another-secret-xx");
        let (foreign, _) = other.issue(1, Role::Admin, None, 0, chrono::Utc::now().timestamp());
        assert_eq!(keys.verify(&foreign).unwrap_err(), Rejection::Invalid);
        // Expired and signed by someone else: invalid, not merely expired.
        let (foreign_expired, _) = other.issue(1, Role::Admin, None, 0, long_ago);
        assert_eq!(
            keys.verify(&foreign_expired).unwrap_err(),
            Rejection::Invalid
        );

        // Same secret, HS512: refused because the algorithm is pinned.
        let claims = Claims {
            sub: "1".into(),
            role: Role::Admin,
            org: None,
            iat: chrono::Utc::now().timestamp(),
            exp: chrono::Utc::now().timestamp() + 60,
            generation: 0,
        };
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &claims,
            &EncodingKey::from_secret(b"test-secret-test-secret-test-secret"),
        )
        .unwrap();
        assert_eq!(keys.verify(&hs512).unwrap_err(), Rejection::Invalid);
        assert_eq!(keys.verify("not.a.jwt").unwrap_err(), Rejection::Invalid);
    }

    #[test]
    fn refresh_tokens_are_random_and_hashed() {
        let a = new_refresh_token();
        let b = new_refresh_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_eq!(hash_refresh_token(&a), hash_refresh_token(&a));
        assert_ne!(hash_refresh_token(&a), a);
    }
}
