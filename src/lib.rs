//! HotSwap's adapters around the orchestration core in `hotswap-actors`:
//! configuration, the HTTP API, the store back-ends and the command line.

pub mod store;
