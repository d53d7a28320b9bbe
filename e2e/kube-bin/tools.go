//go:build tools

// The upstream main packages are built directly (`go build <pkg>`), so the
// binaries are exactly the released ones; these imports only keep
// `go mod tidy` from dropping their modules.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
