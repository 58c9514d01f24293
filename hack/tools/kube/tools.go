//go:build tools

// Package tools pins the upstream Kubernetes commands that the test
// control plane is built from. Nothing here is part of pullpolicy itself.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
