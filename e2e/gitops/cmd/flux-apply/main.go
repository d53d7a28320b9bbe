// Command flux-apply applies a multi-document YAML the way Flux's
// kustomize-controller does and reports what Flux would conclude: it uses
// Flux's own apply-and-wait library (github.com/fluxcd/pkg/ssa) with its
// kstatus poller, so the verdicts printed are Flux's, not a re-implementation.
//
//	flux-apply --kubeconfig K --file F [--namespace NS] [--timeout 20s]
//	           [--health-check-exprs KUSTOMIZATION.yaml] [--reapply]
//	flux-apply --status-of OBJECT.json [--health-check-exprs KUSTOMIZATION.yaml]
//
// It prints one JSON line per object and step:
//
//	{"phase":"apply","kind":...,"namespace":...,"name":...,"action":"created"}
//	{"phase":"wait","error":"...","seconds":20.1}
//	{"phase":"status","kind":...,"namespace":...,"name":...,"status":"Current","message":"..."}
//	{"phase":"reapply",...,"action":"unchanged"}      (with --reapply)
//
// With --health-check-exprs, the `spec.healthCheckExprs` of the given Flux
// Kustomization are the CEL status readers of the poller, as in
// kustomize-controller; without it, kstatus's generic rules decide.
// --status-of computes the status of an object read from a file (the same
// readers, no cluster), for objects the test captured at a moment of its
// choosing.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling"
	"github.com/fluxcd/cli-utils/pkg/kstatus/polling/engine"
	"github.com/fluxcd/cli-utils/pkg/kstatus/polling/event"
	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"github.com/fluxcd/cli-utils/pkg/object"
	"github.com/fluxcd/pkg/apis/kustomize"
	"github.com/fluxcd/pkg/runtime/cel"
	"github.com/fluxcd/pkg/ssa"
	ssautils "github.com/fluxcd/pkg/ssa/utils"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/yaml"
)

// What kustomize-controller calls itself: its field manager, and the group
// of the owner labels it puts on everything it applies.
const (
	controllerName = "kustomize-controller"
	kustomizeGroup = "kustomize.toolkit.fluxcd.io"
	// The Kustomization these objects pretend to come from (owner labels).
	ownerName      = "iam-operator-gitops-proof"
	ownerNamespace = "flux-system"
)

type line struct {
	Phase     string   `json:"phase"`
	Kind      string   `json:"kind,omitempty"`
	Namespace string   `json:"namespace,omitempty"`
	Name      string   `json:"name,omitempty"`
	Action    string   `json:"action,omitempty"`
	Status    string   `json:"status,omitempty"`
	Message   string   `json:"message,omitempty"`
	Error     *string  `json:"error,omitempty"`
	Seconds   *float64 `json:"seconds,omitempty"`
}

func emit(l line) {
	out, _ := json.Marshal(l)
	fmt.Println(string(out))
}

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the cluster to apply to")
	file := flag.String("file", "", "multi-document YAML to apply")
	namespace := flag.String("namespace", "", "namespace for objects that name none (a Kustomization's targetNamespace)")
	timeout := flag.Duration("timeout", 20*time.Second, "how long to wait for the objects (a Kustomization's spec.timeout)")
	interval := flag.Duration("interval", 2*time.Second, "how often the poller reads the objects")
	exprs := flag.String("health-check-exprs", "", "a Flux Kustomization YAML whose spec.healthCheckExprs become the poller's CEL status readers")
	reapply := flag.Bool("reapply", false, "after waiting, apply the same YAML again and print each object's action")
	statusOf := flag.String("status-of", "", "print the status of the object in this JSON file and exit")
	flag.Parse()

	if err := run(*kubeconfig, *file, *namespace, *timeout, *interval, *exprs, *reapply, *statusOf); err != nil {
		fmt.Fprintln(os.Stderr, "flux-apply:", err)
		os.Exit(1)
	}
}

func run(kubeconfig, file, namespace string, timeout, interval time.Duration,
	exprs string, reapply bool, statusOf string) error {
	healthChecks, err := readHealthChecks(exprs)
	if err != nil {
		return err
	}
	if statusOf != "" {
		return printStatusOf(statusOf, healthChecks)
	}
	if kubeconfig == "" || file == "" {
		return errors.New("--kubeconfig and --file are required")
	}

	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	kubeClient, mapper, err := newClient(cfg)
	if err != nil {
		return err
	}
	readers, err := statusReaders(healthChecks, mapper)
	if err != nil {
		return err
	}
	poller := polling.NewStatusPoller(kubeClient, mapper, polling.Options{CustomStatusReaders: readers})
	manager := ssa.NewResourceManager(kubeClient, poller, ssa.Owner{Field: controllerName, Group: kustomizeGroup})
	ctx := context.Background()

	changeSet, err := apply(ctx, manager, file, namespace)
	if err != nil {
		return err
	}
	for _, entry := range changeSet.Entries {
		emit(entryLine("apply", entry))
	}

	// kustomize-controller waits on everything it applied, with the
	// Kustomization's timeout; a timeout or a Failed object is its verdict,
	// reported here, not a failure of this program.
	started := time.Now()
	waitErr := manager.WaitForSet(changeSet.ToObjMetadataSet(), ssa.WaitOptions{Interval: interval, Timeout: timeout})
	seconds := time.Since(started).Seconds()
	msg := ""
	if waitErr != nil {
		msg = waitErr.Error()
	}
	emit(line{Phase: "wait", Error: &msg, Seconds: &seconds})

	statuses, err := snapshot(ctx, poller, changeSet.ToObjMetadataSet(), interval)
	if err != nil {
		return err
	}
	for _, rs := range statuses {
		emit(line{
			Phase: "status", Kind: rs.Identifier.GroupKind.Kind, Namespace: rs.Identifier.Namespace,
			Name: rs.Identifier.Name, Status: rs.Status.String(), Message: rs.Message,
		})
	}

	if reapply {
		again, err := apply(ctx, manager, file, namespace)
		if err != nil {
			return err
		}
		for _, entry := range again.Entries {
			emit(entryLine("reapply", entry))
		}
	}
	return nil
}

func newClient(cfg *rest.Config) (client.Client, meta.RESTMapper, error) {
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, nil, err
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, httpClient)
	if err != nil {
		return nil, nil, err
	}
	kubeClient, err := client.New(cfg, client.Options{HTTPClient: httpClient, Mapper: mapper})
	if err != nil {
		return nil, nil, err
	}
	return kubeClient, mapper, nil
}

// apply reads the file anew (the manager edits the objects it is given)
// and applies it with the options kustomize-controller uses by default.
func apply(ctx context.Context, manager *ssa.ResourceManager, file, namespace string) (*ssa.ChangeSet, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	objects, err := ssautils.ReadObjects(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	for _, o := range objects {
		if o.GetNamespace() == "" && namespace != "" {
			o.SetNamespace(namespace)
		}
	}
	manager.SetOwnerLabels(objects, ownerName, ownerNamespace)

	opts := ssa.DefaultApplyOptions()
	// The selectors and clean-up kustomize-controller applies with: objects
	// a user marked are skipped or applied only when absent, and fields
	// left by kubectl or by earlier update-style writes of the controller
	// are taken over, so they do not read as drift forever.
	opts.ExclusionSelector = map[string]string{kustomizeGroup + "/reconcile": "disabled"}
	opts.IfNotPresentSelector = map[string]string{kustomizeGroup + "/ssa": "IfNotPresent"}
	opts.Cleanup = ssa.ApplyCleanupOptions{
		Annotations: []string{corev1.LastAppliedConfigAnnotation},
		FieldManagers: []ssa.FieldManager{
			{Name: "kubectl", OperationType: metav1.ManagedFieldsOperationApply},
			{Name: "kubectl", OperationType: metav1.ManagedFieldsOperationUpdate},
			{Name: "before-first-apply", OperationType: metav1.ManagedFieldsOperationUpdate},
			{Name: controllerName, OperationType: metav1.ManagedFieldsOperationUpdate},
		},
		Exclusions: map[string]string{kustomizeGroup + "/ssa": "Merge"},
	}
	return manager.ApplyAllStaged(ctx, objects, opts)
}

func entryLine(phase string, e ssa.ChangeSetEntry) line {
	return line{
		Phase: phase, Kind: e.ObjMetadata.GroupKind.Kind, Namespace: e.ObjMetadata.Namespace,
		Name: e.ObjMetadata.Name, Action: e.Action.String(),
	}
}

// snapshot is one round of the same poller WaitForSet used: the status
// and message of every object as Flux reads them now.
func snapshot(ctx context.Context, poller *polling.StatusPoller, set object.ObjMetadataSet,
	interval time.Duration) ([]*event.ResourceStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	seen := map[object.ObjMetadata]*event.ResourceStatus{}
	for e := range poller.Poll(ctx, set, polling.PollOptions{PollInterval: interval}) {
		switch e.Type {
		case event.ErrorEvent:
			return nil, e.Error
		case event.ResourceUpdateEvent:
			seen[e.Resource.Identifier] = e.Resource
		}
		if len(seen) == len(set) {
			cancel()
		}
	}
	if len(seen) != len(set) {
		return nil, fmt.Errorf("the poller reported %d of %d objects", len(seen), len(set))
	}
	out := make([]*event.ResourceStatus, 0, len(set))
	for _, id := range set {
		out = append(out, seen[id])
	}
	return out, nil
}

func readHealthChecks(path string) ([]kustomize.CustomHealthCheck, error) {
	if path == "" {
		return nil, nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var k struct {
		Kind string `json:"kind"`
		Spec struct {
			HealthCheckExprs []map[string]any `json:"healthCheckExprs"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(raw, &k); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if k.Kind != "Kustomization" || len(k.Spec.HealthCheckExprs) == 0 {
		return nil, fmt.Errorf("%s: not a Kustomization with spec.healthCheckExprs", path)
	}
	// Strict on the health checks alone, and by exact key (Go's JSON
	// decoding ignores case): a misspelt key such as `inprogress` would be
	// dropped by the API server and its rule silently lost.
	allowed := map[string]bool{"apiVersion": true, "kind": true, "current": true, "inProgress": true, "failed": true}
	var checks []kustomize.CustomHealthCheck
	for i, entry := range k.Spec.HealthCheckExprs {
		for key := range entry {
			if !allowed[key] {
				return nil, fmt.Errorf("%s: healthCheckExprs[%d]: unknown field %q", path, i, key)
			}
		}
		one, err := json.Marshal(entry)
		if err != nil {
			return nil, err
		}
		var hc kustomize.CustomHealthCheck
		if err := json.Unmarshal(one, &hc); err != nil {
			return nil, fmt.Errorf("%s: healthCheckExprs[%d]: %w", path, i, err)
		}
		checks = append(checks, hc)
	}
	return checks, nil
}

func statusReaders(checks []kustomize.CustomHealthCheck, mapper meta.RESTMapper) ([]engine.StatusReader, error) {
	if len(checks) == 0 {
		return nil, nil
	}
	reader, err := cel.NewStatusReader(checks)
	if err != nil {
		return nil, err
	}
	return []engine.StatusReader{reader(mapper)}, nil
}

// printStatusOf computes an object's status with the rules the poller
// would use for it: the CEL evaluator of its kind when one is given,
// kstatus's generic rules otherwise.
func printStatusOf(path string, checks []kustomize.CustomHealthCheck) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(raw); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	var result *status.Result
	var evaluator *cel.StatusEvaluator
	for _, hc := range checks {
		if hc.APIVersion == u.GetAPIVersion() && hc.Kind == u.GetKind() {
			evaluator, err = cel.NewStatusEvaluator(&hc.HealthCheckExpressions)
			if err != nil {
				return err
			}
		}
	}
	if evaluator != nil {
		result, err = evaluator.Evaluate(context.Background(), u)
	} else {
		result, err = status.Compute(u)
	}
	if err != nil {
		return err
	}
	emit(line{
		Phase: "status", Kind: u.GetKind(), Namespace: u.GetNamespace(), Name: u.GetName(),
		Status: result.Status.String(), Message: result.Message,
	})
	return nil
}
