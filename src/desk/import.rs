//! Importing past cases from CSV.
