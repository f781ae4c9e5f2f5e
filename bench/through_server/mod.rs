//! What through_prosody.rs and through_ejabberd.rs share: the whole benchmark but the
//! choice of server (`run::main_through`).

mod c2s;
mod echo;
mod measure;
pub mod run;
