# Sphinx configuration of the aetos release notes (reno).
# Built by `tools/just docs` with warnings as errors:
#   sphinx-build -W --keep-going -b html releasenotes/source releasenotes/build/html
# reno reads the notes from git history, so this needs a git checkout
# (a clone is enough; no tag is needed).

project = "aetos Release Notes"
copyright = "aetos contributors"

extensions = [
    "reno.sphinxext",
    "openstackdocstheme",
]

openstackdocs_repo_name = "openstack/aetos"
openstackdocs_bug_project = "aetos"
openstackdocs_bug_tag = "releasenotes"
openstackdocs_auto_name = False

html_theme = "openstackdocs"
html_theme_options = {
    # As in doc/source/conf.py: no analytics, no docs.openstack.org badge.
    "analytics_tracking_code": "",
    "display_badge": False,
}

master_doc = "index"
exclude_patterns = ["_build"]
pygments_style = "native"
