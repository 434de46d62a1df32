//! native-tests
