//! Accounts and sign-in: register, create users, passwords, sessions.
