//! Expert assignments: propose, accept, decline, withdraw, complete, and who sees which.
