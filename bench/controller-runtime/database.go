package main

import (
	"context"
	"crypto/rand"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
)

const postgresPort = 5432

type databaseReconciler struct {
	client.Client
}

func setupDatabases(mgr ctrl.Manager, workers int) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&Database{}).
		Owns(&corev1.Secret{}).
		Owns(&corev1.Service{}).
		Owns(&appsv1.StatefulSet{}).
		WithOptions(controller.Options{MaxConcurrentReconciles: workers}).
		Complete(&databaseReconciler{Client: mgr.GetClient()})
}

func (r *databaseReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var db Database
	if err := r.Get(ctx, req.NamespacedName, &db); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !db.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil // the garbage collector deletes what it owns
	}

	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: db.Name + "-credentials", Namespace: db.Namespace}}
	if _, err := controllerutil.CreateOrUpdate(ctx, r.Client, secret, func() error {
		setLabels(&secret.ObjectMeta, &db)
		if secret.Data == nil {
			secret.Type = corev1.SecretTypeOpaque
			secret.Data = map[string][]byte{}
		}
		// Created once: PostgreSQL keeps the first password in its data volume.
		if len(secret.Data["password"]) == 0 {
			secret.Data["password"] = []byte(rand.Text())
		}
		secret.Data["username"] = []byte(db.Spec.Username)
		secret.Data["database"] = []byte(db.Spec.DatabaseName)
		secret.Data["host"] = []byte(fmt.Sprintf("%s.%s.svc", db.Name, db.Namespace))
		secret.Data["port"] = []byte(fmt.Sprint(postgresPort))
		return controllerutil.SetControllerReference(&db, secret, r.Scheme())
	}); err != nil {
		return ctrl.Result{}, fmt.Errorf("credentials Secret: %w", err)
	}

	for _, headless := range []bool{true, false} {
		if err := r.applyService(ctx, &db, headless); err != nil {
			return ctrl.Result{}, err
		}
	}

	size, err := resource.ParseQuantity(db.Spec.Storage.Size)
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("spec.storage.size: %w", err)
	}
	sts := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: db.Name, Namespace: db.Namespace}}
	if _, err := controllerutil.CreateOrUpdate(ctx, r.Client, sts, func() error {
		setLabels(&sts.ObjectMeta, &db)
		if sts.CreationTimestamp.IsZero() {
			// Selector and claim templates are immutable; the template is set in full once,
			// then only the fields the Database drives are kept as it says (setting the
			// whole template again would differ from the server's defaulted copy and update
			// on every reconcile).
			sts.Spec = statefulSetSpec(&db, size)
		}
		sts.Spec.Replicas = &db.Spec.Replicas
		for i := range sts.Spec.Template.Spec.Containers {
			if c := &sts.Spec.Template.Spec.Containers[i]; c.Name == "postgres" {
				c.Image = db.Spec.Image
				if db.Spec.Resources != nil {
					c.Resources = *db.Spec.Resources
				}
			}
		}
		return controllerutil.SetControllerReference(&db, sts, r.Scheme())
	}); err != nil {
		return ctrl.Result{}, fmt.Errorf("StatefulSet: %w", err)
	}

	status := databaseStatus(&db, sts)
	if equality.Semantic.DeepEqual(status, db.Status) {
		return ctrl.Result{}, nil
	}
	db.Status = status
	// A conflict (the cache is behind the status written a moment ago) is retried with
	// backoff, as every error is.
	if err := r.Status().Update(ctx, &db); err != nil {
		return ctrl.Result{}, fmt.Errorf("status: %w", err)
	}
	return ctrl.Result{}, nil
}

func (r *databaseReconciler) applyService(ctx context.Context, db *Database, headless bool) error {
	name := db.Name
	if headless {
		name += "-headless"
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: db.Namespace}}
	_, err := controllerutil.CreateOrUpdate(ctx, r.Client, svc, func() error {
		setLabels(&svc.ObjectMeta, db)
		svc.Spec.Selector = selectorLabels(db)
		svc.Spec.Ports = []corev1.ServicePort{{
			Name: "postgres", Port: postgresPort, TargetPort: intstr.FromInt32(postgresPort), Protocol: corev1.ProtocolTCP,
		}}
		if headless {
			svc.Spec.ClusterIP = corev1.ClusterIPNone
			svc.Spec.PublishNotReadyAddresses = true
		} else {
			svc.Spec.Type = corev1.ServiceTypeClusterIP
			// Clients reach the first Pod only: the replicas do not replicate.
			svc.Spec.Selector["statefulset.kubernetes.io/pod-name"] = db.Name + "-0"
		}
		return controllerutil.SetControllerReference(db, svc, r.Scheme())
	})
	if err != nil {
		return fmt.Errorf("Service %s: %w", name, err)
	}
	return nil
}

func databaseStatus(db *Database, sts *appsv1.StatefulSet) DatabaseStatus {
	status := *db.Status.DeepCopy()
	status.ObservedGeneration = db.Generation
	status.SecretName = db.Name + "-credentials"
	status.Endpoint = fmt.Sprintf("%s.%s.svc:%d", db.Name, db.Namespace, postgresPort)
	status.ReadyReplicas = sts.Status.ReadyReplicas
	ready := sts.Status.ObservedGeneration >= sts.Generation && sts.Status.ReadyReplicas >= db.Spec.Replicas &&
		sts.Status.UpdatedReplicas >= db.Spec.Replicas
	condition := func(kind string, ok bool, reason, message string) {
		s := metav1.ConditionFalse
		if ok {
			s = metav1.ConditionTrue
		}
		meta.SetStatusCondition(&status.Conditions, metav1.Condition{
			Type: kind, Status: s, Reason: reason, Message: message, ObservedGeneration: db.Generation,
		})
	}
	if ready {
		status.Phase = "Ready"
		condition("Ready", true, "AsExpected", "every replica is ready")
		condition("Progressing", false, "AsExpected", "every replica runs the current spec")
	} else {
		status.Phase = "Deploying"
		message := fmt.Sprintf("%d of %d replicas ready", sts.Status.ReadyReplicas, db.Spec.Replicas)
		condition("Ready", false, "Deploying", message)
		condition("Progressing", true, "Deploying", message)
	}
	return status
}

func setLabels(meta *metav1.ObjectMeta, db *Database) {
	if meta.Labels == nil {
		meta.Labels = map[string]string{}
	}
	for k, v := range podLabels(db) {
		meta.Labels[k] = v
	}
}

func podLabels(db *Database) map[string]string {
	labels := selectorLabels(db)
	labels["app.kubernetes.io/managed-by"] = "controller-runtime-operator"
	labels["app.kubernetes.io/instance"] = db.Name
	return labels
}

func selectorLabels(db *Database) map[string]string {
	return map[string]string{"database.example.com/database": db.Name, "app.kubernetes.io/name": "postgresql"}
}

func statefulSetSpec(db *Database, size resource.Quantity) appsv1.StatefulSetSpec {
	secret := db.Name + "-credentials"
	fromSecret := func(env, key string) corev1.EnvVar {
		return corev1.EnvVar{Name: env, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: key,
		}}}
	}
	tcp := &corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(postgresPort)}}
	emptyDir := func(name string) corev1.Volume {
		return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}
	}
	uid, no, yes := int64(999), false, true
	grace := int64(60)
	pgdata := "/var/lib/postgresql/data/pgdata"
	postgres := corev1.Container{
		Name:  "postgres",
		Image: db.Spec.Image,
		Ports: []corev1.ContainerPort{{Name: "postgres", ContainerPort: postgresPort, Protocol: corev1.ProtocolTCP}},
		Env: []corev1.EnvVar{
			fromSecret("POSTGRES_USER", "username"), fromSecret("POSTGRES_PASSWORD", "password"),
			fromSecret("POSTGRES_DB", "database"), {Name: "PGDATA", Value: pgdata},
		},
		ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{
			Command: []string{"pg_isready", "-h", "127.0.0.1", "-p", fmt.Sprint(postgresPort)},
		}}, PeriodSeconds: 5},
		LivenessProbe: &corev1.Probe{ProbeHandler: *tcp, PeriodSeconds: 10, TimeoutSeconds: 5, FailureThreshold: 6},
		StartupProbe:  &corev1.Probe{ProbeHandler: *tcp, PeriodSeconds: 10, FailureThreshold: 60},
		Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{
			Command: []string{"pg_ctl", "stop", "-D", pgdata, "-m", "fast", "-w", "-t", "50"},
		}}},
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: &no, Privileged: &no, ReadOnlyRootFilesystem: &yes, RunAsNonRoot: &yes,
			Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
		VolumeMounts: []corev1.VolumeMount{
			{Name: "data", MountPath: "/var/lib/postgresql/data"},
			{Name: "run", MountPath: "/var/run/postgresql"},
			{Name: "tmp", MountPath: "/tmp"},
		},
	}
	if db.Spec.Resources != nil {
		postgres.Resources = *db.Spec.Resources
	}
	policy := corev1.FSGroupChangeOnRootMismatch
	return appsv1.StatefulSetSpec{
		Replicas:            &db.Spec.Replicas,
		ServiceName:         db.Name + "-headless",
		Selector:            &metav1.LabelSelector{MatchLabels: selectorLabels(db)},
		PodManagementPolicy: appsv1.ParallelPodManagement,
		PersistentVolumeClaimRetentionPolicy: &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
			WhenDeleted: appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
			WhenScaled:  appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
		},
		Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: podLabels(db)},
			Spec: corev1.PodSpec{
				Containers: []corev1.Container{postgres},
				SecurityContext: &corev1.PodSecurityContext{
					RunAsUser: &uid, RunAsGroup: &uid, FSGroup: &uid, FSGroupChangePolicy: &policy, RunAsNonRoot: &yes,
					SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
				},
				EnableServiceLinks:            &no,
				TerminationGracePeriodSeconds: &grace,
				Volumes:                       []corev1.Volume{emptyDir("run"), emptyDir("tmp")},
			},
		},
		VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
			ObjectMeta: metav1.ObjectMeta{Name: "data", Labels: podLabels(db)},
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				StorageClassName: db.Spec.Storage.StorageClassName,
				Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceStorage: size,
				}},
			},
		}},
	}
}
