# Sphinx configuration of the aetos documentation.
# Built by `tools/just docs` with warnings as errors:
#   sphinx-build -W --keep-going -b html doc/source doc/build/html

project = "aetos"
copyright = "aetos contributors"

extensions = [
    "openstackdocstheme",
]

# openstackdocstheme: the repository name and bug tracker it links to.
openstackdocs_repo_name = "openstack/aetos"
openstackdocs_bug_project = "aetos"
openstackdocs_bug_tag = "doc"
openstackdocs_auto_name = False

html_theme = "openstackdocs"

master_doc = "index"
exclude_patterns = ["_build"]
pygments_style = "native"

html_theme_options = {
    # The theme ships docs.openstack.org's analytics id; these docs load
    # nothing from outside.
    "analytics_tracking_code": "",
    # The "under development" badge links to docs.openstack.org's series.
    "display_badge": False,
}
