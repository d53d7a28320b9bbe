//go:build tools

// The upstream main packages are built directly (`go build <pkg>`), so the
// binaries are the released ones; these imports only keep `go mod tidy`
// from dropping their modules.
package tools

import (
	_ "helm.sh/helm/v4/cmd/helm"
	_ "sigs.k8s.io/kustomize/kustomize/v5"
)
