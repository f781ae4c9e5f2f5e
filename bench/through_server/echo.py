"""The second ceiling of the through-server benchmarks (Prosody, ejabberd): the echo
component a user would write in Python in an afternoon (asyncio, regular expressions, no XML
parser, no HTTP). It connects to the server's component port (XEP-0114), answers every
message with to and from swapped and the same body, and skips those of type error. It prints
`connected` once the handshake is accepted, then answers until the stream closes.

python3 echo.py PORT DOMAIN SECRET
"""

import asyncio
import hashlib
import re
import sys

MESSAGE = re.compile(rb"<message\b([^>]*)>(.*?)</message>", re.S)
ATTRIBUTE = re.compile(rb"\b(from|to|type)=(['\"])(.*?)\2", re.S)
BODY = re.compile(rb"<body>(.*?)</body>", re.S)
# A stanza larger than this without its end tag is a broken stream: stop.
MAX_BUFFER = 1 << 20


async def connect(port, domain, secret):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' "
        b"xmlns:stream='http://etherx.jabber.org/streams' to='" + domain + b"'>"
    )
    buffer = b""
    while True:
        header = re.search(rb"<stream:stream\b[^>]*\bid=(['\"])(.*?)\1[^>]*>", buffer)
        if header:
            break
        chunk = await reader.read(4096)
        if not chunk:
            raise ConnectionError("the server closed the stream: %r" % buffer)
        buffer += chunk
    digest = hashlib.sha1(header.group(2) + secret).hexdigest().encode()
    writer.write(b"<handshake>" + digest + b"</handshake>")
    buffer = buffer[header.end():]
    while b"/>" not in buffer:
        chunk = await reader.read(4096)
        if not chunk:
            raise ConnectionError("the server closed the stream: %r" % buffer)
        buffer += chunk
    if b"<handshake" not in buffer:
        raise ConnectionError("handshake refused: %r" % buffer)
    return reader, writer, buffer[buffer.index(b"/>") + 2:]


async def serve(reader, writer, buffer):
    while True:
        answers = []
        end = 0
        for message in MESSAGE.finditer(buffer):
            end = message.end()
            attributes = {m.group(1): m.group(3) for m in ATTRIBUTE.finditer(message.group(1))}
            if attributes.get(b"type") == b"error" or b"from" not in attributes:
                continue
            body = BODY.search(message.group(2))
            answers.append(
                b"<message from='" + attributes.get(b"to", b"") + b"' to='" + attributes[b"from"]
                + b"' type='chat'><body>" + (body.group(1) if body else b"") + b"</body></message>"
            )
        buffer = buffer[end:]
        if answers:
            writer.write(b"".join(answers))
        if len(buffer) > MAX_BUFFER:
            return
        chunk = await reader.read(65536)
        if not chunk:
            return
        buffer += chunk


async def main():
    port, domain, secret = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3].encode()
    try:
        reader, writer, rest = await connect(port, domain, secret)
    except (OSError, ConnectionError) as error:
        print(error, flush=True)
        return
    print("connected", flush=True)
    await serve(reader, writer, rest)


if __name__ == "__main__":
    asyncio.run(main())
