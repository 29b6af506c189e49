//! Reading the confidentiality terms experts acknowledge by accepting an
//! assignment (the text and its version: `domain::terms`).

pub use crate::domain::terms::{
    CONFIDENTIALITY_TERMS_API, CONFIDENTIALITY_TERMS_PAGE, CONFIDENTIALITY_TERMS_VERSION, Terms,
};

/// The confidentiality terms in force. Anyone may read them: an expert
/// reads them before accepting, before having signed in at all (the
/// proposal mail links to them), and they hold nothing confidential.
pub fn confidentiality_terms() -> Terms {
    crate::domain::terms::CURRENT
}
