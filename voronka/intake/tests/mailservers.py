"""Real mail servers on loopback for the mail intake tests: Debian's dovecot (IMAP) started from a minimal
config in a temporary directory, and aiosmtpd (through Voronka's own SMTP endpoint)."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

DOVECOT = shutil.which("dovecot") or ("/usr/sbin/dovecot" if os.path.exists("/usr/sbin/dovecot") else None)
PASSWORD = "imap-secret-1"
USER = "crm"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, log: Path, seconds: float = 20.0) -> None:
    """Wait until a server started by the suite accepts connections (its startup, not a worker)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"dovecot exited with {proc.returncode}: {log.read_text() if log.exists() else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"dovecot did not listen on {port}: {log.read_text() if log.exists() else ''}")


@dataclass
class Imap:
    host: str
    port: int
    login: str
    password: str

    def client(self):
        from imapclient import IMAPClient

        client = IMAPClient(self.host, port=self.port, ssl=False, timeout=10)
        client.login(self.login, self.password)
        return client

    def append(self, folder: str, message: bytes) -> None:
        """Deliver a message into the box the way an MTA's delivery agent would: IMAP APPEND."""
        client = self.client()
        try:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            client.append(folder, message)
        finally:
            client.logout()


def start_dovecot():
    """(Imap, stop): a dovecot serving plain IMAP on 127.0.0.1 with one passwd-file user and mail in a
    temporary directory. As root the mail and login processes run as Debian's dovecot/dovenull users
    (dovecot refuses root for them); as another user everything runs as that user."""
    root = Path(tempfile.mkdtemp(prefix="vk-dovecot-"))
    os.chmod(root, 0o755)
    for sub in ("run", "state", "mail"):
        (root / sub).mkdir()
    if os.getuid() == 0:
        mail_user = pwd.getpwnam("dovecot")
        login_user, internal_user, internal_group = "dovenull", "dovecot", "dovecot"
        os.chown(root / "mail", mail_user.pw_uid, mail_user.pw_gid)
        uid, gid = mail_user.pw_uid, mail_user.pw_gid
    else:
        me = pwd.getpwuid(os.getuid())
        login_user = internal_user = me.pw_name
        import grp

        internal_group = grp.getgrgid(os.getgid()).gr_name
        uid, gid = os.getuid(), os.getgid()
    (root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
    port = free_port()
    log = root / "dovecot.log"
    conf = root / "dovecot.conf"
    conf.write_text(f"""
base_dir = {root}/run
state_dir = {root}/state
log_path = {log}
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = {uid}
first_valid_gid = {gid}
default_login_user = {login_user}
default_internal_user = {internal_user}
default_internal_group = {internal_group}
mail_location = maildir:{root}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
""")
    proc = subprocess.Popen([DOVECOT, "-F", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    def stop():
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(root, ignore_errors=True)

    try:
        wait_for_port(port, proc, log)
    except Exception:
        stop()
        raise
    return Imap("127.0.0.1", port, USER, PASSWORD), stop
