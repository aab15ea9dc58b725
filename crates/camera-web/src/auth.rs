//! The admin password, sessions, CSRF tokens and the failed-login limiter.
//!
//! No default password: the first visit sets it. It is stored as PBKDF2-HMAC-SHA256 with a
//! random salt. Browsers get an HttpOnly, Secure, SameSite=Strict session cookie plus a CSRF
//! token they must echo in `X-CSRF-Token`; scripts may use HTTP Basic with the user `admin`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use camera_pki::text::{hex_lower, unhex};
use camera_state::{write_atomic, SECRET_MODE};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::admission::{client_key, ipv6_prefix};

/// PBKDF2 rounds: about 0.1 s on a desktop core, under a second on a camera's ARM core.
pub const PBKDF2_ITERATIONS: u32 = 200_000;
pub const MIN_PASSWORD_LEN: usize = 8;
pub const MAX_PASSWORD_LEN: usize = 128;
/// Sessions end after this long without a request...
const SESSION_IDLE: Duration = Duration::from_secs(30 * 60);
/// ...and after this long in any case.
const SESSION_MAX: Duration = Duration::from_secs(12 * 3600);
const MAX_SESSIONS: usize = 32;
/// Failed logins allowed from one address before each further attempt must wait.
const FREE_FAILURES: u32 = 5;
/// ...and from one IPv6 /64, where a host can take any address it likes. On a LAN every IPv6
/// host shares the /64, so this is much larger: one guesser rotating addresses is slowed down
/// after 50 tries without one mistyped password holding up every IPv6 user.
const FREE_FAILURES_PER_PREFIX: u32 = 50;
/// The /64's count forgets one failure this often, so mistakes add up only while they come fast.
const PREFIX_DECAY: Duration = Duration::from_secs(60);
/// The longest wait, so the owner is never locked out for good.
const MAX_LOCKOUT: Duration = Duration::from_secs(15 * 60);
const MAX_TRACKED_CLIENTS: usize = 1024;

pub const SESSION_COOKIE: &str = "camera_session";

#[derive(Serialize, Deserialize)]
struct StoredPassword {
    algorithm: String,
    iterations: u32,
    salt: String,
    hash: String,
}

/// A random token; `None` if the system RNG fails (then no session is made: fail closed).
fn random_token(bytes: usize) -> Option<String> {
    let mut buf = vec![0u8; bytes];
    SystemRandom::new().fill(&mut buf).ok()?;
    Some(hex_lower(&buf))
}

/// Why an authentication attempt failed.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no admin password is set yet")]
    NoPassword,
    /// The password file is unreadable: nobody can log in until it is removed on the camera.
    #[error("the admin password file is damaged")]
    Damaged,
    #[error("the password is not correct")]
    WrongPassword,
    #[error("too many wrong passwords: wait {} seconds", retry_after.as_secs())]
    TooManyAttempts { retry_after: Duration },
}

/// Why first-run setup did not set the password.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("the admin password is already set")]
    AlreadySet,
    #[error(transparent)]
    Weak(#[from] WeakPassword),
    #[error("the random number generator failed")]
    NoRandomness,
    #[error("the password could not be stored: {0}")]
    Storage(#[source] std::io::Error),
}

/// Why a new password is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WeakPassword {
    #[error("the password must have at least {MIN_PASSWORD_LEN} characters")]
    TooShort,
    #[error("the password must have at most {MAX_PASSWORD_LEN} characters")]
    TooLong,
}

/// What failed logins are counted under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Limited {
    Address(IpAddr),
    Prefix64(IpAddr),
}

/// The counters a failure from `client` adds to, with the failures each allows for free.
fn limiter_keys(client: IpAddr) -> impl Iterator<Item = (Limited, u32)> {
    let address = client_key(client);
    std::iter::once((Limited::Address(address), FREE_FAILURES))
        .chain(ipv6_prefix(address).map(|p| (Limited::Prefix64(p), FREE_FAILURES_PER_PREFIX)))
}

struct Failures {
    count: u32,
    blocked_until: Option<Instant>,
    last: Instant,
}

impl Failures {
    /// A /64's count forgets one failure per [`PREFIX_DECAY`] since the last one; an address's
    /// count does not decay (it is cleared by the correct password, and its wait is capped).
    fn decay(&mut self, key: Limited, free: u32, now: Instant) {
        if !matches!(key, Limited::Prefix64(_)) {
            return;
        }
        let elapsed = now.duration_since(self.last);
        let periods = elapsed.as_secs() / PREFIX_DECAY.as_secs();
        if periods == 0 {
            return;
        }
        self.count = self.count.saturating_sub(u32::try_from(periods).unwrap_or(u32::MAX));
        // Keep the part of a period that has not passed yet.
        let partial = Duration::from_secs(elapsed.as_secs() % PREFIX_DECAY.as_secs());
        self.last = now.checked_sub(partial).unwrap_or(now);
        if self.count < free {
            self.blocked_until = None;
        }
    }
}

struct Session {
    csrf: String,
    created: Instant,
    last_used: Instant,
}

/// All authentication state of the server.
pub struct Auth {
    /// Where the password is stored (`admin-password.json`).
    path: PathBuf,
    /// Held for the whole of a setup, so two first visits cannot both set the password.
    setup_lock: Mutex<()>,
    password: Mutex<Option<StoredPassword>>,
    /// Why the stored password could not be read, if it could not.
    damaged: Option<String>,
    sessions: Mutex<HashMap<String, Session>>,
    /// Per address, and per IPv6 /64 (see [`FREE_FAILURES_PER_PREFIX`]).
    failures: Mutex<HashMap<Limited, Failures>>,
    /// SHA-256 of the last password that passed PBKDF2 with a per-process salt, so scripts
    /// using HTTP Basic on every request do not pay PBKDF2 each time.
    verified: Mutex<Option<[u8; 32]>>,
    process_salt: [u8; 16],
    iterations: u32,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Auth(..)")
    }
}

impl Auth {
    /// Loads the stored password hash from `path`, if any.
    ///
    /// A damaged file does not stop the camera: it keeps serving, nobody can log in or set a
    /// new password over the network, and the log says how to recover. `None`: the system's
    /// random number generator failed (the per-process salt needs it).
    pub fn load(path: &Path) -> Option<Self> {
        let (password, damaged) = match camera_state::read_optional(path) {
            Ok(None) => (None, None),
            Ok(Some(bytes)) => match serde_json::from_slice::<StoredPassword>(&bytes) {
                Ok(stored) => (Some(stored), None),
                Err(e) => (None, Some(format!("{} is damaged ({e})", path.display()))),
            },
            Err(e) => (None, Some(format!("cannot read {} ({e})", path.display()))),
        };
        if let Some(why) = &damaged {
            crate::log::warn(&format!(
                "camera-web: {why}: changes are refused until it is removed on the camera (then the next visit sets a new password)"
            ));
        }
        let mut process_salt = [0u8; 16];
        SystemRandom::new().fill(&mut process_salt).ok()?;
        Some(Self {
            path: path.to_owned(),
            setup_lock: Mutex::new(()),
            password: Mutex::new(password),
            damaged,
            sessions: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            verified: Mutex::new(None),
            process_salt,
            iterations: PBKDF2_ITERATIONS,
        })
    }

    /// Fewer PBKDF2 rounds: tests only.
    pub fn with_iterations(mut self, iterations: u32) -> Self {
        self.iterations = iterations;
        self
    }

    /// True also when the password file is damaged: a damaged file must not reopen first-run setup.
    pub fn password_set(&self) -> bool {
        self.damaged.is_some() || self.password.lock().map(|p| p.is_some()).unwrap_or(true)
    }

    /// Checks a new password's length; the error's sentence is shown to the user.
    pub fn check_new_password(password: &str) -> Result<(), WeakPassword> {
        let len = password.chars().count();
        if len < MIN_PASSWORD_LEN {
            return Err(WeakPassword::TooShort);
        }
        if len > MAX_PASSWORD_LEN {
            return Err(WeakPassword::TooLong);
        }
        Ok(())
    }

    /// The stored form of `password` (PBKDF2 with a random salt) and its JSON; `None` if the RNG
    /// failed. Slow: call from a blocking thread.
    fn hash_password(&self, password: &str) -> Option<(StoredPassword, Vec<u8>)> {
        let mut salt = [0u8; 16];
        SystemRandom::new().fill(&mut salt).ok()?;
        let mut out = [0u8; 32];
        ring::pbkdf2::derive(ring::pbkdf2::PBKDF2_HMAC_SHA256, self.iter(), &salt, password.as_bytes(), &mut out);
        let stored = StoredPassword {
            algorithm: "pbkdf2-hmac-sha256".into(),
            iterations: self.iterations,
            salt: hex_lower(&salt),
            hash: hex_lower(&out),
        };
        let json = serde_json::to_vec(&stored).ok()?;
        Some((stored, json))
    }

    /// First-run setup: sets the password if none is set, durably, then ends every session.
    /// Slow (PBKDF2 and an fsync): call it from a blocking task, which runs to the end even when
    /// the client goes away, so what the caller answers always matches what is on disk.
    /// "Already set" is decided under the lock from the file itself, not only from memory.
    pub fn setup(&self, password: &str) -> Result<(), SetupError> {
        let _guard = self.setup_lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.password_set() || self.path.symlink_metadata().is_ok() {
            return Err(SetupError::AlreadySet);
        }
        Self::check_new_password(password).map_err(SetupError::Weak)?;
        let (stored, json) = self.hash_password(password).ok_or(SetupError::NoRandomness)?;
        write_atomic(&self.path, &json, SECRET_MODE).map_err(SetupError::Storage)?;
        *self.password.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(stored);
        if let Ok(mut v) = self.verified.lock() {
            *v = None;
        }
        self.end_all_sessions();
        Ok(())
    }

    fn iter(&self) -> NonZeroU32 {
        NonZeroU32::new(self.iterations).unwrap_or(NonZeroU32::MIN)
    }

    fn cache_key(&self, password: &str) -> [u8; 32] {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(&self.process_salt);
        ctx.update(password.as_bytes());
        let mut key = [0u8; 32];
        key.copy_from_slice(ctx.finish().as_ref());
        key
    }

    /// Waits imposed on `client` by earlier failures (its address's or its /64's).
    fn blocked(&self, client: IpAddr) -> Option<Duration> {
        let mut failures = self.failures.lock().ok()?;
        let now = Instant::now();
        limiter_keys(client)
            .filter_map(|(key, free)| {
                let entry = failures.get_mut(&key)?;
                entry.decay(key, free, now);
                entry.blocked_until?.checked_duration_since(now)
            })
            .max()
    }

    fn record_failure(&self, client: IpAddr) {
        let Ok(mut failures) = self.failures.lock() else { return };
        let now = Instant::now();
        for (key, free) in limiter_keys(client) {
            if failures.len() >= MAX_TRACKED_CLIENTS && !failures.contains_key(&key) {
                if let Some(oldest) = failures.iter().min_by_key(|(_, f)| f.last).map(|(k, _)| *k) {
                    failures.remove(&oldest);
                }
            }
            let entry = failures.entry(key).or_insert(Failures { count: 0, blocked_until: None, last: now });
            entry.decay(key, free, now);
            entry.count += 1;
            entry.last = now;
            if entry.count >= free {
                let exponent = (entry.count - free).min(10);
                let wait = Duration::from_secs(1u64 << exponent).min(MAX_LOCKOUT);
                entry.blocked_until = Some(now + wait);
            }
        }
    }

    /// A correct password from `client`: its address starts afresh, and its mistakes no longer
    /// count against its /64 (they were a user's typos, not a guesser's).
    fn record_success(&self, client: IpAddr) {
        let Ok(mut failures) = self.failures.lock() else { return };
        let own = failures.remove(&Limited::Address(client_key(client))).map_or(0, |f| f.count);
        let now = Instant::now();
        for (key, free) in limiter_keys(client).skip(1) {
            if let Some(entry) = failures.get_mut(&key) {
                entry.decay(key, free, now);
                entry.count = entry.count.saturating_sub(own);
                if entry.count < free {
                    entry.blocked_until = None;
                }
            }
        }
    }

    /// Verifies `password` for a login from `client` (slow: call from a blocking thread).
    pub fn verify(&self, client: IpAddr, password: &str) -> Result<(), AuthError> {
        if self.damaged.is_some() {
            return Err(AuthError::Damaged);
        }
        if let Some(retry_after) = self.blocked(client) {
            return Err(AuthError::TooManyAttempts { retry_after });
        }
        let key = self.cache_key(password);
        if self.verified.lock().ok().and_then(|v| *v).is_some_and(|v| bool::from(v.ct_eq(&key))) {
            self.record_success(client);
            return Ok(());
        }
        let (iterations, salt, hash) = {
            let stored = self.password.lock().map_err(|_| AuthError::NoPassword)?;
            let stored = stored.as_ref().ok_or(AuthError::NoPassword)?;
            (stored.iterations, unhex(&stored.salt).unwrap_or_default(), unhex(&stored.hash).unwrap_or_default())
        };
        let iterations = NonZeroU32::new(iterations).unwrap_or(NonZeroU32::MIN);
        let candidate = Zeroizing::new(password.as_bytes().to_vec());
        match ring::pbkdf2::verify(ring::pbkdf2::PBKDF2_HMAC_SHA256, iterations, &salt, &candidate, &hash) {
            Ok(()) => {
                if let Ok(mut v) = self.verified.lock() {
                    *v = Some(key);
                }
                self.record_success(client);
                Ok(())
            }
            Err(_) => {
                self.record_failure(client);
                Err(AuthError::WrongPassword)
            }
        }
    }

    /// Starts a session; returns (session token, CSRF token), or `None` if the RNG failed.
    pub fn new_session(&self) -> Option<(String, String)> {
        let token = random_token(32)?;
        let csrf = random_token(32)?;
        if let Ok(mut sessions) = self.sessions.lock() {
            let now = Instant::now();
            sessions.retain(|_, s| Self::alive(s, now));
            if sessions.len() >= MAX_SESSIONS {
                if let Some(oldest) = sessions.iter().min_by_key(|(_, s)| s.last_used).map(|(t, _)| t.clone()) {
                    sessions.remove(&oldest);
                }
            }
            sessions.insert(token.clone(), Session { csrf: csrf.clone(), created: now, last_used: now });
        }
        Some((token, csrf))
    }

    fn alive(session: &Session, now: Instant) -> bool {
        now.duration_since(session.last_used) < SESSION_IDLE && now.duration_since(session.created) < SESSION_MAX
    }

    /// The CSRF token of a live session (and keeps it alive).
    pub fn session_csrf(&self, token: &str) -> Option<String> {
        let mut sessions = self.sessions.lock().ok()?;
        let now = Instant::now();
        let session = sessions.get_mut(token)?;
        if !Self::alive(session, now) {
            sessions.remove(token);
            return None;
        }
        session.last_used = now;
        Some(session.csrf.clone())
    }

    pub fn end_session(&self, token: &str) {
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.remove(token);
        }
    }

    /// Ends every session (after a password change).
    pub fn end_all_sessions(&self) {
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.clear();
        }
    }
}

/// Constant-time comparison for tokens (time depends only on the lengths).
pub fn tokens_equal(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// An `Auth` whose password file is in a fresh temporary directory.
    fn auth() -> Auth {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("camera-web-auth-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Auth::load(&dir.join("admin-password.json")).unwrap().with_iterations(1000)
    }

    #[test]
    fn set_then_verify() {
        let auth = auth();
        let client: IpAddr = "10.0.0.9".parse().unwrap();
        assert_eq!(auth.verify(client, "whatever1"), Err(AuthError::NoPassword));
        auth.setup("correct horse").unwrap();
        assert!(auth.password_set());
        assert_eq!(auth.verify(client, "wrong horse"), Err(AuthError::WrongPassword));
        assert_eq!(auth.verify(client, "correct horse"), Ok(()));
        assert_eq!(auth.verify(client, "correct horse"), Ok(()), "cached path");
        assert_eq!(auth.verify(client, "correct horsE"), Err(AuthError::WrongPassword));
    }

    #[test]
    fn failures_slow_down_one_client_only_and_the_wait_is_capped() {
        let auth = auth();
        auth.setup("correct horse").unwrap();
        let attacker: IpAddr = "10.0.0.66".parse().unwrap();
        for _ in 0..FREE_FAILURES {
            assert_eq!(auth.verify(attacker, "guess"), Err(AuthError::WrongPassword));
        }
        assert!(matches!(auth.verify(attacker, "correct horse"), Err(AuthError::TooManyAttempts { .. })));
        assert_eq!(auth.verify("10.0.0.1".parse().unwrap(), "correct horse"), Ok(()));
        {
            let mut f = auth.failures.lock().unwrap();
            f.get_mut(&Limited::Address(attacker)).unwrap().count = 1000;
        }
        auth.record_failure(attacker);
        let wait = auth.blocked(attacker).unwrap();
        assert!(wait <= MAX_LOCKOUT, "{wait:?}");
    }

    #[test]
    fn ipv6_hosts_are_limited_per_address_and_a_rotating_guesser_per_64() {
        let auth = auth();
        auth.setup("correct horse").unwrap();
        let attacker: IpAddr = "fd77::66".parse().unwrap();
        for _ in 0..FREE_FAILURES {
            assert_eq!(auth.verify(attacker, "guess"), Err(AuthError::WrongPassword));
        }
        assert!(matches!(auth.verify(attacker, "correct horse"), Err(AuthError::TooManyAttempts { .. })));
        // Another host on the same LAN (same /64) is not held up by one guesser's mistakes.
        assert_eq!(auth.verify("fd77::beef".parse().unwrap(), "correct horse"), Ok(()));
        // A guesser taking a new address for each try is slowed down once the /64 used up its tries.
        for n in 0..FREE_FAILURES_PER_PREFIX {
            let rotated: IpAddr = format!("fd77::{:x}", 0x1000 + n).parse().unwrap();
            let _ = auth.verify(rotated, "guess");
        }
        assert!(matches!(auth.verify("fd77::4242".parse().unwrap(), "guess"), Err(AuthError::TooManyAttempts { .. })));
        assert_eq!(
            auth.verify("fd77:0:0:1::beef".parse().unwrap(), "correct horse"),
            Ok(()),
            "another /64 is another client"
        );
        assert_eq!(auth.verify("10.0.0.1".parse().unwrap(), "correct horse"), Ok(()), "IPv4 clients are unaffected");
    }

    /// A /64 count that never decays would let 50 IPv6 users who each mistyped once (and then
    /// logged in) lock the 51st out although it has the right password.
    #[test]
    fn typos_by_many_ipv6_users_who_then_log_in_lock_nobody_out() {
        let auth = auth();
        auth.setup("correct horse").unwrap();
        for n in 0..FREE_FAILURES_PER_PREFIX {
            let user: IpAddr = format!("fd77::{:x}", 0x2000 + n).parse().unwrap();
            assert_eq!(auth.verify(user, "correct hrose"), Err(AuthError::WrongPassword));
            assert_eq!(auth.verify(user, "correct horse"), Ok(()));
        }
        assert_eq!(auth.verify("fd77::51".parse().unwrap(), "correct horse"), Ok(()), "the 51st host gets in");
        assert_eq!(
            auth.verify("fd77::52".parse().unwrap(), "typo"),
            Err(AuthError::WrongPassword),
            "and a typo waits not"
        );
    }

    /// ...and failures that stop coming are forgotten one per minute.
    #[test]
    fn the_64s_count_decays_with_time() {
        let auth = auth();
        auth.setup("correct horse").unwrap();
        for n in 0..FREE_FAILURES_PER_PREFIX {
            let _ = auth.verify(format!("fd77::{:x}", 0x3000 + n).parse().unwrap(), "guess");
        }
        let blocked_host: IpAddr = "fd77::4343".parse().unwrap();
        assert!(matches!(auth.verify(blocked_host, "correct horse"), Err(AuthError::TooManyAttempts { .. })));
        {
            // Thirty minutes pass (the clock is the entry's own: move it back).
            let mut failures = auth.failures.lock().unwrap();
            let prefix = failures.get_mut(&Limited::Prefix64(ipv6_prefix(blocked_host).unwrap())).unwrap();
            prefix.last -= Duration::from_secs(30 * 60);
            prefix.blocked_until = Some(Instant::now() + Duration::from_secs(1));
        }
        assert_eq!(auth.verify(blocked_host, "correct horse"), Ok(()), "30 failures forgotten, the wait lifted");
        let failures = auth.failures.lock().unwrap();
        let left = failures.get(&Limited::Prefix64(ipv6_prefix(blocked_host).unwrap())).unwrap().count;
        assert_eq!(left, FREE_FAILURES_PER_PREFIX - 30);
    }

    /// Setup decides "already set" from the file too: a password written by another process (or
    /// by a setup whose answer never arrived) is never overwritten.
    #[test]
    fn setup_refuses_when_the_file_exists_and_sets_only_once() {
        let auth = auth();
        std::fs::write(&auth.path, b"{}").unwrap();
        assert!(matches!(auth.setup("correct horse"), Err(SetupError::AlreadySet)));
        std::fs::remove_file(&auth.path).unwrap();
        assert!(matches!(auth.setup("short"), Err(SetupError::Weak(_))));
        auth.setup("correct horse").unwrap();
        assert!(matches!(auth.setup("another horse"), Err(SetupError::AlreadySet)));
        assert_eq!(auth.verify("10.0.0.1".parse().unwrap(), "correct horse"), Ok(()));
    }

    #[test]
    fn sessions_carry_a_csrf_token_and_end() {
        let auth = auth();
        let (token, csrf) = auth.new_session().unwrap();
        assert_eq!(auth.session_csrf(&token).as_deref(), Some(csrf.as_str()));
        assert!(auth.session_csrf("forged").is_none());
        auth.end_session(&token);
        assert!(auth.session_csrf(&token).is_none());
        assert!(tokens_equal(&csrf, &csrf.clone()) && !tokens_equal(&csrf, "x"));
    }

    #[test]
    fn a_damaged_password_file_refuses_logins_and_setup_but_loads() {
        let path = std::env::temp_dir().join(format!("camera-web-auth-{}-damaged", std::process::id()));
        std::fs::write(&path, b"{not json").unwrap();
        let auth = Auth::load(&path).unwrap();
        assert!(auth.password_set(), "setup stays closed");
        assert_eq!(auth.verify("10.0.0.9".parse().unwrap(), "anything"), Err(AuthError::Damaged));
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn password_rules() {
        assert!(Auth::check_new_password("short").is_err());
        assert!(Auth::check_new_password("long enough").is_ok());
        assert!(Auth::check_new_password(&"x".repeat(200)).is_err());
    }
}
