# aetos task runner — the tox of this project. `tools/just --list` for all.
# Every recipe installs what it needs; the stack (Keystone, Prometheus,
# memcached, the openstack CLI) is installed and started by tools/stack.sh.

set shell := ["bash", "-euo", "pipefail", "-c"]

export AETOS_STACK_DIR := env_var_or_default("AETOS_STACK_DIR", justfile_directory() / ".stack")
export CARGO_TERM_COLOR := "never"

# List the recipes.
default:
    @{{just_executable()}} --list

# The whole test suite: lint, docs, unit, functional (against the real stack), the image, the Kubernetes bases. CI runs this.
test: lint docs unit functional image kubernetes

# Formatting, clippy with warnings as errors, shellcheck of the scripts.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets --features functional -- -D warnings
    tools/shellcheck.sh

# Documentation and release notes, warnings as errors, and `reno lint`
# (Sphinx, reno, openstackdocstheme pinned in doc/requirements.txt).
docs:
    tools/docs.sh

# Unit, table, property tests and doc tests of every workspace crate (the
# service and crates/*): no external process needed.
unit:
    tools/deps.sh
    cargo test --workspace --no-fail-fast

# Start (installing if needed) the local real-component stack.
stack-up:
    tools/stack.sh start

# Stop every process of the local stack.
stack-down:
    tools/stack.sh stop

# Functional tests: the real aetos-api binary against real Keystone, Prometheus, memcached and the openstack CLI.
functional: stack-up
    cargo build --bin aetos-api
    cargo test --features functional --test 'functional_*' --no-fail-fast -- --test-threads 4

# The container image: build it with buildah (tools/image.sh), then run its entry point chrooted against the stack.
image: stack-up
    tools/image.sh
    tools/image-test.sh

# Render every deploy/kubernetes overlay, validate it against the Kubernetes schemas, check its configuration.
kubernetes:
    cargo build --bin aetos-api
    tools/kubernetes-test.sh target/debug/aetos-api

# Bring up the demo: stack + aetos registered in the catalog, then `openstack metric query up`.
demo:
    tools/demo.sh

# Stop the demo's aetos and the stack.
demo-down:
    tools/demo.sh stop

# Benchmarks: criterion for the tenancy engine, and the service load script (ratios against direct Prometheus).
bench: stack-up
    cargo bench --bench tenancy
    tools/bench.sh

# Regenerate the committed samples (config and policy).
samples:
    cargo run --quiet --bin aetos-api -- genconfig > etc/aetos/aetos.conf.sample
    cargo run --quiet --bin aetos-api -- genpolicy > etc/aetos/policy.yaml.sample

# Run the PromQL scoping fuzzer for SECONDS over the seeds (needs a nightly toolchain and cargo-fuzz).
fuzz SECONDS="60":
    cd fuzz && mkdir -p corpus/scope_query && cargo +nightly fuzz run scope_query corpus/scope_query seeds/scope_query -- -dict=promql.dict -max_len=512 -max_total_time={{SECONDS}}
