//! The XEP-0363 slot: `<request filename= size= content-type=/>` sent to the upload
//! service as the component, and its answer read: the PUT and GET URLs and the PUT's
//! headers (only `Authorization`, `Cookie` and `Expires`, as XEP-0363 §5 allows), or the
//! service's refusal with its condition.

use minidom::rxml::xml_ncname;
use minidom::Element;

use super::{ask, UploadError, UPLOAD_NS};
use crate::handle::ComponentHandle;
use crate::stanza::COMPONENT_NS;
use crate::xml::outgoing::error_condition;
use crate::xml::set_attr;

/// The headers a slot may ask the PUT to carry (XEP-0363 §5).
const ALLOWED_HEADERS: [&str; 3] = ["Authorization", "Cookie", "Expires"];
const STANZAS_NS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";

/// Where to PUT the file and where it is fetched from.
#[derive(Debug, PartialEq, Eq)]
pub struct Slot {
    pub put_url: String,
    pub get_url: String,
    pub headers: Vec<(&'static str, String)>,
}

/// Asks `service` for a slot for a file of `size` bytes.
pub async fn request(
    handle: &ComponentHandle,
    service: &str,
    name: &str,
    content_type: &str,
    size: usize,
) -> Result<Slot, UploadError> {
    let mut iq = Element::bare("iq", COMPONENT_NS);
    set_attr(&mut iq, xml_ncname!("type"), "get");
    let mut request = Element::bare("request", UPLOAD_NS);
    set_attr(&mut request, xml_ncname!("filename"), name);
    set_attr(&mut request, xml_ncname!("size"), &size.to_string());
    set_attr(&mut request, xml_ncname!("content-type"), content_type);
    iq.append_child(request);
    // The whole upload is bounded by `upload_timeout` (the caller's); this one iq too.
    let timeout = handle.uploads().upload_timeout;
    match ask(handle, iq, service, timeout).await? {
        Some(answer) => read_slot(&answer, service),
        None => Err(UploadError::TimedOut(timeout.as_secs_f64())),
    }
}

/// The slot in the service's answer, or its refusal.
pub fn read_slot(answer: &Element, service: &str) -> Result<Slot, UploadError> {
    if let Some(condition) = error_condition(answer) {
        let error = answer.get_child("error", COMPONENT_NS);
        if let Some(too_large) = error.and_then(|e| e.get_child("file-too-large", UPLOAD_NS)) {
            let limit = too_large
                .get_child("max-file-size", UPLOAD_NS)
                .and_then(|m| m.text().trim().parse().ok());
            return Err(UploadError::TooLarge {
                size: 0,
                max_upload_size: 0,
                service_limit: limit,
            });
        }
        let text = error
            .and_then(|e| e.get_child("text", STANZAS_NS))
            .map(|t| t.text().chars().take(200).collect());
        return Err(UploadError::Refused {
            service: service.to_string(),
            condition: condition.to_string(),
            text,
        });
    }
    let bad = |why: &str| UploadError::BadSlot(why.to_string());
    let slot = answer
        .get_child("slot", UPLOAD_NS)
        .ok_or_else(|| bad("no <slot/>"))?;
    let put = slot
        .get_child("put", UPLOAD_NS)
        .ok_or_else(|| bad("no <put/>"))?;
    let get = slot
        .get_child("get", UPLOAD_NS)
        .ok_or_else(|| bad("no <get/>"))?;
    let put_url = http_url(put.attr("url")).ok_or_else(|| bad("<put/> has no http(s) url"))?;
    let get_url = http_url(get.attr("url")).ok_or_else(|| bad("<get/> has no http(s) url"))?;
    let mut headers = Vec::new();
    for header in put.children().filter(|c| c.name() == "header") {
        let Some(name) = header.attr("name") else {
            continue;
        };
        let allowed = ALLOWED_HEADERS
            .iter()
            .find(|allowed| allowed.eq_ignore_ascii_case(name));
        if let Some(allowed) = allowed {
            if headers.iter().all(|(known, _)| known != allowed) {
                // XEP-0363: newlines are stripped from the values.
                let value: String = header
                    .text()
                    .chars()
                    .filter(|c| *c != '\n' && *c != '\r')
                    .collect();
                headers.push((*allowed, value));
            }
        }
    }
    Ok(Slot {
        put_url,
        get_url,
        headers,
    })
}

fn http_url(url: Option<&str>) -> Option<String> {
    let parsed = url::Url::parse(url?).ok()?;
    matches!(parsed.scheme(), "http" | "https").then(|| parsed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(xml: &str) -> Element {
        xml.parse().expect("valid answer")
    }

    #[test]
    fn a_slot_is_read_with_only_the_allowed_headers() {
        let slot = read_slot(
            &answer(
                "<iq xmlns='jabber:component:accept' type='result' id='a'>\
                 <slot xmlns='urn:xmpp:http:upload:0'>\
                 <put url='http://127.0.0.1:5280/upload/x/a.png'>\
                 <header name='authorization'>Bearer t\nok</header>\
                 <header name='Host'>evil</header><header name='Cookie'>c=1</header></put>\
                 <get url='http://127.0.0.1:5280/upload/x/a.png'/></slot></iq>",
            ),
            "upload.example.com",
        )
        .expect("a slot");
        assert_eq!(slot.put_url, "http://127.0.0.1:5280/upload/x/a.png");
        assert_eq!(slot.get_url, "http://127.0.0.1:5280/upload/x/a.png");
        assert_eq!(
            slot.headers,
            [
                ("Authorization", "Bearer tok".to_string()),
                ("Cookie", "c=1".to_string())
            ]
        );
    }

    #[test]
    fn refusals_carry_the_condition_and_the_services_limit() {
        let refused = read_slot(
            &answer(
                "<iq xmlns='jabber:component:accept' type='error' id='a'><error type='auth'>\
                 <forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
                 <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>No</text></error></iq>",
            ),
            "upload.example.com",
        );
        assert_eq!(
            refused.expect_err("refused").to_string(),
            "the upload service upload.example.com refused a slot: forbidden (No)"
        );
        let too_large = read_slot(
            &answer(
                "<iq xmlns='jabber:component:accept' type='error' id='a'><error type='modify'>\
                 <not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
                 <file-too-large xmlns='urn:xmpp:http:upload:0'><max-file-size>100</max-file-size>\
                 </file-too-large></error></iq>",
            ),
            "upload.example.com",
        );
        assert!(matches!(
            too_large,
            Err(UploadError::TooLarge {
                service_limit: Some(100),
                ..
            })
        ));
        for xml in [
            "<iq xmlns='jabber:component:accept' type='result' id='a'/>",
            "<iq xmlns='jabber:component:accept' type='result' id='a'><slot xmlns='urn:xmpp:http:upload:0'>\
             <put url='ftp://x/a'/><get url='http://x/a'/></slot></iq>",
        ] {
            assert!(matches!(read_slot(&answer(xml), "u"), Err(UploadError::BadSlot(_))), "{xml}");
        }
    }
}
