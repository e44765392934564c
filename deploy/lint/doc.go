// Package lint holds the tests that keep the deployment artefacts under
// deploy/ valid: every YAML file parses, the Kubernetes manifests carry
// the fields the fleet depends on, the Dockerfile builds packages that
// exist, the systemd unit verifies, the BIND configuration passes
// named-checkconf, the shell scripts parse, every configuration key names
// a real dsn-node flag, and deploy/local/fleet.sh starts a real fleet and
// stops it without leaving a process behind.
//
// The package has no code of its own; it exists for its tests. Tests that
// need an external binary (named-checkconf, named, dig) skip when it is
// missing and CI is unset, and fail when CI is set. systemd-analyze is
// checked only where it exists (CI images may lack systemd).
package lint
