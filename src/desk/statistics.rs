//! The program managers' statistics.
