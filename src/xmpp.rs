//! The XMPP edge: XEP-0114 connections to the server ([`connection`]) over a socket read and
//! written by [`stream`], and the life of one connected stream ([`session`]), which writes
//! its stanzas through [`outgoing`].

pub mod handshake;
pub mod session;
pub mod socket;
pub mod writer;
