// Package e2e runs the product as an operator would: real dsn-node
// processes on 127.0.0.x (deploy/fleet), real SIPp phones, real BIND9.
package e2e
