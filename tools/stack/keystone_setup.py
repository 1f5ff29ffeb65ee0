"""One-shot Keystone setup: db_sync, fernet_setup, credential_setup, bootstrap.

Why one process: each separate ``keystone-manage`` run pays ~4 s of imports;
running the four commands in one interpreter pays it once.  oslo.config's
``CONF.clear()`` between commands lets the CLI parse its arguments again.

Usage: keystone_setup.py CONFIG_FILE PUBLIC_URL REGION
The admin password comes from the OS_BOOTSTRAP_PASSWORD environment
variable (never from the command line, which other users can read).
"""

import sys

from keystone.cmd import cli
from oslo_config import cfg


def main(argv):
    """Run the four keystone-manage commands against CONFIG_FILE."""
    config_file, url, region = argv
    owner = ["--keystone-user", "root", "--keystone-group", "root"]
    commands = [
        ["db_sync"],
        ["fernet_setup"] + owner,
        ["credential_setup"] + owner,
        [
            "bootstrap",
            "--bootstrap-username",
            "admin",
            "--bootstrap-project-name",
            "admin",
            "--bootstrap-role-name",
            "admin",
            "--bootstrap-service-name",
            "keystone",
            "--bootstrap-public-url",
            url,
            "--bootstrap-internal-url",
            url,
            "--bootstrap-admin-url",
            url,
            "--bootstrap-region-id",
            region,
        ],
    ]
    for command in commands:
        cli.main(argv=["keystone-manage", "--config-file", config_file] + command)
        cfg.CONF.clear()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
