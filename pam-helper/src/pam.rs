//! The PAM transaction: authenticate, then account management, with a conversation that
//! answers only with the one username and password it was given.
#![forbid(unsafe_code)]

use std::ffi::{CStr, CString};

use pam_client::{Context, ConversationHandler, ErrorCode, Flag};
use sudohub_protocol::pam::DenyReason;
use sudohub_protocol::Secret;

/// Why the check did not say yes.
pub enum Outcome {
    /// PAM refused the user.
    Denied(DenyReason),
    /// PAM itself failed; the message is for the hub's log.
    Failed(String),
}

/// Answers PAM's prompts. Messages from modules are dropped: the PAM conversation is
/// never logged.
struct Conversation {
    username: String,
    password: Secret,
}

impl ConversationHandler for Conversation {
    fn prompt_echo_on(&mut self, _prompt: &CStr) -> Result<CString, ErrorCode> {
        CString::new(self.username.as_str()).map_err(|_| ErrorCode::CONV_ERR)
    }

    fn prompt_echo_off(&mut self, _prompt: &CStr) -> Result<CString, ErrorCode> {
        CString::new(self.password.expose()).map_err(|_| ErrorCode::CONV_ERR)
    }

    fn text_info(&mut self, _msg: &CStr) {}

    fn error_msg(&mut self, _msg: &CStr) {}
}

/// `pam_authenticate` then `pam_acct_mgmt` for `username` with `service`.
pub fn check(service: &str, username: &str, password: Secret) -> Result<(), Outcome> {
    let conv = Conversation {
        username: username.to_owned(),
        password,
    };
    let failed = |what: &str, code: ErrorCode| {
        crate::deny_reason(code)
            .map(Outcome::Denied)
            .unwrap_or_else(|| Outcome::Failed(format!("{what}: {code:?}")))
    };
    let mut ctx = Context::new(service, Some(username), conv)
        .map_err(|e| Outcome::Failed(format!("pam_start({service}): {:?}", e.code())))?;
    if !crate::sys::no_fail_delay(&mut ctx) {
        return Err(Outcome::Failed(
            "pam_set_item(PAM_FAIL_DELAY) refused".into(),
        ));
    }
    ctx.authenticate(Flag::DISALLOW_NULL_AUTHTOK)
        .map_err(|e| failed("pam_authenticate", e.code()))?;
    ctx.acct_mgmt(Flag::DISALLOW_NULL_AUTHTOK)
        .map_err(|e| failed("pam_acct_mgmt", e.code()))?;
    Ok(())
}
