//! Who a user is to the desk. See PRODUCT.md, "People and roles".

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Applicant,
    Supporter,
    Expert,
    Manager,
    Admin,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Applicant,
        Role::Supporter,
        Role::Expert,
        Role::Manager,
        Role::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Applicant => "applicant",
            Role::Supporter => "supporter",
            Role::Expert => "expert",
            Role::Manager => "manager",
            Role::Admin => "admin",
        }
    }

    /// Full-time desk staff: may see every case and act on it.
    pub fn is_desk_staff(self) -> bool {
        matches!(self, Role::Supporter | Role::Admin)
    }

    /// Only admins manage accounts, the expert registry and imports.
    pub fn may_manage_users(self) -> bool {
        self == Role::Admin
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown role {0:?}; use applicant, supporter, expert, manager or admin")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

/// The person acting: who they are, their role and (for applicants) their
/// organisation. Every interface (JSON API, pages, CLI) hands one of these
/// to the use cases in `crate::desk`, which decide what it may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub id: i64,
    pub role: Role,
    pub organization_id: Option<i64>,
}

impl Caller {
    /// Whether the caller has one of `roles`.
    pub fn is_one_of(&self, roles: &[Role]) -> bool {
        roles.contains(&self.role)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
            assert_eq!(
                serde_json::to_string(&role).unwrap(),
                format!("\"{}\"", role.as_str())
            );
        }
        assert!("root".parse::<Role>().is_err());
        assert!("Admin".parse::<Role>().is_err());
    }

    #[test]
    fn only_supporters_and_admins_are_desk_staff() {
        let staff: Vec<Role> = Role::ALL
            .into_iter()
            .filter(|r| r.is_desk_staff())
            .collect();
        assert_eq!(staff, vec![Role::Supporter, Role::Admin]);
        assert!(Role::Admin.may_manage_users());
        assert!(!Role::Supporter.may_manage_users());
    }
}
