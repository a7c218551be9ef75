// Command controller-runtime-operator is the comparison operator of `just bench`: the job of
// our database-operator and backup-operator, for the objects the benchmark creates, written
// the way a typical controller-runtime operator is written, so that the benchmark can measure
// both on the same control plane with the same seed objects.
//
// What it does, in one manager whose informer caches see only --namespace:
//
//   - Databases (database.go): CreateOrUpdate of the credentials Secret (a password from
//     crypto/rand, created once), the headless and the client Service and the StatefulSet
//     (the Database's image, resources, a data claim template from spec.storage), each with
//     a controller owner reference; then the status: phase Deploying until every replica is
//     ready (then Ready), readyReplicas, secretName, endpoint, Ready and Progressing
//     conditions, observedGeneration, written with an update of the status subresource when
//     it changed.
//   - Backups (backup.go): the status our backup-operator writes while the Database is not
//     Ready: phase Pending, WaitingForDatabase (DatabaseNotReady or DatabaseNotFound),
//     BackupReady False (NoArtifact), Progressing False, observedGeneration. A Backup is
//     reconciled again when its Database changes (a field index on spec.databaseRef.name).
//
// What it does not do: run backups (Jobs, the artifacts claim, schedules, retention),
// restores, the backupRef gate, validation beyond the CRDs' own, Events, drift Events,
// growing volumes, reading Pods or EndpointSlices for failure reasons, the password init
// container and login readiness probe of our StatefulSet, leader election, finalizers. The
// benchmark's Pods are never scheduled, so none of that would run there either.
//
// Flags: --namespace (required), --metrics-address (/metrics, and /readyz, which answers 200
// once every informer has synced), --concurrent-reconciles (per controller; the benchmark
// passes our operators' default, 16), --log-requests (client-go's debugging round tripper
// logs one "Response" line with verb and URL per API request, as JSON; the benchmark counts
// them).
package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"

	"github.com/go-logr/zapr"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/transport"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

func main() {
	namespace := flag.String("namespace", "", "the only namespace watched (required)")
	metricsAddress := flag.String("metrics-address", "127.0.0.1:8080", "address of /metrics and /readyz")
	workers := flag.Int("concurrent-reconciles", 1, "reconciles in flight per controller")
	logRequests := flag.Bool("log-requests", true, "log every API request (client-go's debugging round tripper)")
	flag.Parse()
	if err := run(*namespace, *metricsAddress, *workers, *logRequests); err != nil {
		fmt.Fprintf(os.Stderr, "controller-runtime-operator: %v\n", err)
		os.Exit(1)
	}
}

func run(namespace, metricsAddress string, workers int, logRequests bool) error {
	if namespace == "" {
		return fmt.Errorf("--namespace is required")
	}
	// JSON at info level, as controller-runtime's production logger, but without its
	// sampling, which drops a message after its 100th in a second: every request line counts.
	encoding := zap.NewProductionEncoderConfig()
	encoding.EncodeTime = zapcore.RFC3339TimeEncoder
	core := zapcore.NewCore(zapcore.NewJSONEncoder(encoding), zapcore.Lock(os.Stderr), zapcore.InfoLevel)
	logger := zapr.NewLogger(zap.New(core))
	ctrl.SetLogger(logger)
	// client-go logs through klog: the same JSON lines, on the same stream.
	klog.SetLogger(logger)

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := addKnownTypes(scheme); err != nil {
		return err
	}

	config, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("loading the kubeconfig: %w", err)
	}
	if logRequests {
		config.Wrap(func(rt http.RoundTripper) http.RoundTripper {
			return transport.NewDebuggingRoundTripper(rt, transport.DebugURLTiming)
		})
	}

	watched := []client.Object{&Database{}, &Backup{}, &corev1.Secret{}, &corev1.Service{}, &appsv1.StatefulSet{}}
	var mgr ctrl.Manager
	mgr, err = ctrl.NewManager(config, ctrl.Options{
		Scheme: scheme,
		Cache:  cache.Options{DefaultNamespaces: map[string]cache.Config{namespace: {}}},
		Metrics: metricsserver.Options{
			BindAddress:   metricsAddress,
			ExtraHandlers: map[string]http.Handler{"/readyz": synced(func() cache.Cache { return mgr.GetCache() }, watched)},
		},
		HealthProbeBindAddress: "0",
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}
	if err := setupDatabases(mgr, workers); err != nil {
		return err
	}
	if err := setupBackups(mgr, workers); err != nil {
		return err
	}
	return mgr.Start(ctrl.SetupSignalHandler())
}

// synced answers 200 once the informer of every watched type has synced, so that what the
// benchmark measures after it is work, not start-up (our operators' /readyz means the same).
func synced(caches func() cache.Cache, watched []client.Object) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, obj := range watched {
			informer, err := caches().GetInformer(r.Context(), obj, cache.BlockUntilSynced(false))
			if err != nil || !informer.HasSynced() {
				http.Error(w, fmt.Sprintf("%T not synced", obj), http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprintln(w, "ok")
	})
}
