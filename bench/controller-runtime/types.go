package main

// The two custom resources, typed as a kubebuilder project would type them, with only the
// fields this operator reads or writes (the informers drop the rest). The deep copies that
// controller-gen would generate are written out below.

import (
	"encoding/json"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var groupVersion = schema.GroupVersion{Group: "database.example.com", Version: "v1"}

func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(groupVersion, &Database{}, &DatabaseList{}, &Backup{}, &BackupList{})
	metav1.AddToGroupVersion(scheme, groupVersion)
	return nil
}

type Database struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              DatabaseSpec   `json:"spec"`
	Status            DatabaseStatus `json:"status,omitempty"`
}

type DatabaseSpec struct {
	Image        string                       `json:"image"`
	Replicas     int32                        `json:"replicas"`
	DatabaseName string                       `json:"databaseName"`
	Username     string                       `json:"username"`
	Storage      Storage                      `json:"storage"`
	Resources    *corev1.ResourceRequirements `json:"resources,omitempty"`
	BackupRef    *LocalRef                    `json:"backupRef,omitempty"`
}

type Storage struct {
	Size             string  `json:"size"`
	StorageClassName *string `json:"storageClassName,omitempty"`
}

type LocalRef struct {
	Name string `json:"name"`
}

type DatabaseStatus struct {
	Phase              string             `json:"phase,omitempty"`
	ReadyReplicas      int32              `json:"readyReplicas"`
	SecretName         string             `json:"secretName,omitempty"`
	Endpoint           string             `json:"endpoint,omitempty"`
	ObservedGeneration int64              `json:"observedGeneration,omitempty"`
	Conditions         []metav1.Condition `json:"conditions,omitempty"`
}

type DatabaseList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Database `json:"items"`
}

type Backup struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              BackupSpec   `json:"spec"`
	Status            BackupStatus `json:"status,omitempty"`
}

type BackupSpec struct {
	DatabaseRef LocalRef `json:"databaseRef"`
	Schedule    string   `json:"schedule,omitempty"`
	TimeZone    string   `json:"timeZone,omitempty"`
	Retention   int32    `json:"retention,omitempty"`
	Suspend     bool     `json:"suspend,omitempty"`
	// Kept as it came: only the backup runs this operator does not do would read it.
	Destination json.RawMessage `json:"destination,omitempty"`
}

type BackupStatus struct {
	Phase              string             `json:"phase,omitempty"`
	ObservedGeneration int64              `json:"observedGeneration,omitempty"`
	Conditions         []metav1.Condition `json:"conditions,omitempty"`
}

type BackupList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Backup `json:"items"`
}

func (in *Database) DeepCopyInto(out *Database) {
	*out = *in
	in.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	if in.Spec.Storage.StorageClassName != nil {
		class := *in.Spec.Storage.StorageClassName
		out.Spec.Storage.StorageClassName = &class
	}
	out.Spec.Resources = in.Spec.Resources.DeepCopy()
	if in.Spec.BackupRef != nil {
		ref := *in.Spec.BackupRef
		out.Spec.BackupRef = &ref
	}
	out.Status.Conditions = copyConditions(in.Status.Conditions)
}

func (in *Database) DeepCopyObject() runtime.Object {
	out := new(Database)
	in.DeepCopyInto(out)
	return out
}

func (in *DatabaseList) DeepCopyObject() runtime.Object {
	out := &DatabaseList{TypeMeta: in.TypeMeta}
	in.ListMeta.DeepCopyInto(&out.ListMeta)
	if in.Items != nil {
		out.Items = make([]Database, len(in.Items))
		for i := range in.Items {
			in.Items[i].DeepCopyInto(&out.Items[i])
		}
	}
	return out
}

func (in *Backup) DeepCopyInto(out *Backup) {
	*out = *in
	in.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	if in.Spec.Destination != nil {
		out.Spec.Destination = append(json.RawMessage(nil), in.Spec.Destination...)
	}
	out.Status.Conditions = copyConditions(in.Status.Conditions)
}

func (in *Backup) DeepCopyObject() runtime.Object {
	out := new(Backup)
	in.DeepCopyInto(out)
	return out
}

func (in *BackupList) DeepCopyObject() runtime.Object {
	out := &BackupList{TypeMeta: in.TypeMeta}
	in.ListMeta.DeepCopyInto(&out.ListMeta)
	if in.Items != nil {
		out.Items = make([]Backup, len(in.Items))
		for i := range in.Items {
			in.Items[i].DeepCopyInto(&out.Items[i])
		}
	}
	return out
}

func (in *DatabaseStatus) DeepCopy() *DatabaseStatus {
	out := *in
	out.Conditions = copyConditions(in.Conditions)
	return &out
}

func copyConditions(in []metav1.Condition) []metav1.Condition {
	if in == nil {
		return nil
	}
	out := make([]metav1.Condition, len(in))
	for i := range in {
		in[i].DeepCopyInto(&out[i])
	}
	return out
}

func (in *BackupStatus) DeepCopy() *BackupStatus {
	out := *in
	out.Conditions = copyConditions(in.Conditions)
	return &out
}
