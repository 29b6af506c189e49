//! Meetings with experts, their advice, and the support plan.
