//! The XMPP edge: XEP-0114 connections to the server ([`connection`]) and the life of one
//! connected stream ([`session`]), which writes its stanzas through [`outgoing`].

pub mod connection;
pub mod outgoing;
pub mod session;
