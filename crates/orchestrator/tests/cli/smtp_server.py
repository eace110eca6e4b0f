"""A real SMTP server for the tests: aiosmtpd with STARTTLS required and AUTH checked.

Usage: smtp_server.py MAILDIR CERT KEY USERNAME
The password comes from the SMTP_TEST_PASSWORD environment variable. Each message is written
to MAILDIR as NNNN.eml, decoded: a line saying whether the session used TLS and who logged in,
the sender, the recipients, the subject, an empty line and the body. The bound port is printed
on the first line of standard output.
"""

import asyncio
import email
import email.policy
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult


class Recorder:
    def __init__(self, maildir):
        self.maildir = maildir
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        path = os.path.join(self.maildir, "%04d.eml" % self.count)
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        tls = "tls" if session.ssl is not None else "plain"
        login = session.auth_data.decode() if isinstance(session.auth_data, bytes) else str(session.auth_data)
        lines = [
            "Session: %s %s" % (tls, login),
            "From: %s" % message["from"],
            "To: %s" % ", ".join(envelope.rcpt_tos),
            "Subject: %s" % message["subject"],
            "",
            message.get_content(),
        ]
        with open(path + ".tmp", "w") as out:
            out.write("\n".join(lines))
        os.rename(path + ".tmp", path)
        return "250 OK"


def main():
    maildir, cert, key, username = sys.argv[1:5]
    password = os.environ["SMTP_TEST_PASSWORD"].encode()

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == username.encode() and auth_data.password == password
        # A refusal must say so (handled=False), or the server answers nothing at all.
        return AuthResult(success=ok, handled=False, auth_data=auth_data.login if ok else None)

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    handler = Recorder(maildir)

    def factory():
        return SMTP(
            handler,
            hostname="mail.test",
            tls_context=context,
            require_starttls=True,
            authenticator=authenticate,
            auth_required=True,
            auth_require_tls=True,
        )

    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(loop.create_server(factory, host="127.0.0.1", port=0))
    print(server.sockets[0].getsockname()[1], flush=True)
    loop.run_forever()


if __name__ == "__main__":
    main()
