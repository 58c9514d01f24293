//go:build tools

// Package tools pins the upstream helm command that the chart tests are
// built with. Nothing here is part of pullpolicy itself.
package tools

import (
	_ "helm.sh/helm/v4/cmd/helm"
)
