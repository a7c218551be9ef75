package main

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// databaseRefField indexes Backups by the Database they back up, so that a change of a
// Database finds its Backups in the cache.
const databaseRefField = "spec.databaseRef.name"

type backupReconciler struct {
	client.Client
}

func setupBackups(mgr ctrl.Manager, workers int) error {
	err := mgr.GetFieldIndexer().IndexField(context.Background(), &Backup{}, databaseRefField,
		func(obj client.Object) []string { return []string{obj.(*Backup).Spec.DatabaseRef.Name} })
	if err != nil {
		return fmt.Errorf("indexing Backups: %w", err)
	}
	r := &backupReconciler{Client: mgr.GetClient()}
	return ctrl.NewControllerManagedBy(mgr).
		For(&Backup{}).
		Watches(&Database{}, handler.EnqueueRequestsFromMapFunc(r.backupsOf)).
		WithOptions(controller.Options{MaxConcurrentReconciles: workers}).
		Complete(r)
}

func (r *backupReconciler) backupsOf(ctx context.Context, db client.Object) []reconcile.Request {
	var backups BackupList
	if err := r.List(ctx, &backups, client.InNamespace(db.GetNamespace()),
		client.MatchingFields{databaseRefField: db.GetName()}); err != nil {
		return nil
	}
	requests := make([]reconcile.Request, 0, len(backups.Items))
	for _, b := range backups.Items {
		requests = append(requests, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: b.Namespace, Name: b.Name}})
	}
	return requests
}

func (r *backupReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var backup Backup
	if err := r.Get(ctx, req.NamespacedName, &backup); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	name := backup.Spec.DatabaseRef.Name
	var db Database
	waits, reason, message := true, "DatabaseNotReady", fmt.Sprintf("Database %s is not Ready; runs start when it is", name)
	if err := r.Get(ctx, types.NamespacedName{Namespace: backup.Namespace, Name: name}, &db); apierrors.IsNotFound(err) {
		reason = "DatabaseNotFound"
		message = fmt.Sprintf("Database %s does not exist in this namespace; create it or fix spec.databaseRef", name)
	} else if err != nil {
		return ctrl.Result{}, err
	} else if db.Status.ObservedGeneration == db.Generation && meta.IsStatusConditionTrue(db.Status.Conditions, "Ready") {
		waits, reason, message = false, "DatabaseReady", fmt.Sprintf("Database %s is Ready", name)
	}

	status := *backup.Status.DeepCopy()
	status.ObservedGeneration = backup.Generation
	// Runs are not implemented here (see main.go): a Backup stays Pending.
	status.Phase = "Pending"
	condition := func(kind string, ok bool, reason, message string) {
		s := metav1.ConditionFalse
		if ok {
			s = metav1.ConditionTrue
		}
		meta.SetStatusCondition(&status.Conditions, metav1.Condition{
			Type: kind, Status: s, Reason: reason, Message: message, ObservedGeneration: backup.Generation,
		})
	}
	condition("WaitingForDatabase", waits, reason, message)
	condition("BackupReady", false, "NoArtifact", "no verified artifact exists yet")
	if waits {
		condition("Progressing", false, "WaitingForDatabase", "runs wait for Database "+name)
	} else {
		condition("Progressing", false, "NotImplemented", "this operator runs no backups")
	}
	condition("Degraded", false, "AsExpected", "no run failed")

	if equality.Semantic.DeepEqual(status, backup.Status) {
		return ctrl.Result{}, nil
	}
	backup.Status = status
	if err := r.Status().Update(ctx, &backup); err != nil {
		return ctrl.Result{}, fmt.Errorf("status: %w", err)
	}
	return ctrl.Result{}, nil
}
