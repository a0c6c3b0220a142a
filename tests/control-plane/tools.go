//go:build tools

// The commands scripts/control-plane.sh builds from this module's dependencies;
// importing them here keeps them in go.mod and go.sum.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
