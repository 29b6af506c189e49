//! Organisations and their invitations.
