//! The XMPP edge: XEP-0114 connections to the server ([`connection`]) and the life of one
//! connected stream ([`session`]).

pub mod connection;
pub mod session;
