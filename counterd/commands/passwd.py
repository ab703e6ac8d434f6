"""`counterd passwd NAME`: make an HTTP API user's config entry. The password is read without
echo (or from stdin) and only its HA1 = md5("name:realm:password") (and the SHA-256 twin) is printed, which is what
Digest needs and what Basic logins are checked against; the password never goes in the config."""
from __future__ import annotations

import getpass
import sys

from counterd.api.auth import ROLES, make_ha1
from counterd.config import ApiConfig, load_config
from counterd.errors import UserError


def register(subparsers) -> None:
    p = subparsers.add_parser("passwd", help="print a [[users]] config entry for an HTTP API user",
                              description="Ask for a password (twice) and print the [[users]] entry to paste "
                                          "into the config: the name, the role and the Digest HA1 for "
                                          "api.realm. The password itself is never stored.")
    p.add_argument("name", help="user name (no ':')")
    p.add_argument("--role", choices=tuple(ROLES), default="viewer", help="default: viewer")
    p.add_argument("--config", help="take api.realm from this config file")
    p.add_argument("--realm", help=f"the api.realm the hash is for (default {ApiConfig.realm!r})")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin's first line")
    p.set_defaults(func=run)


def run(args) -> int:
    if not args.name or ":" in args.name or '"' in args.name:
        raise UserError(f"user name must be non-empty without ':' or '\"', got {args.name!r}")
    realm = args.realm or (load_config(args.config).api.realm if args.config else ApiConfig.realm)
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            raise UserError("the two passwords differ; nothing printed")
    if not password:
        raise UserError("empty password; nothing printed")
    print(f'[[users]]\nname = "{args.name}"\nrole = "{args.role}"\n'
          f'ha1 = "{make_ha1(args.name, realm, password)}"   # realm "{realm}"\n'
          f'ha1_sha256 = "{make_ha1(args.name, realm, password, "SHA-256")}"   # for Digest SHA-256')
    return 0
