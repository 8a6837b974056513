// Package deploy holds the container image and Kubernetes manifests of
// Glimpse; its test checks that they parse and agree with each other and
// with the server's configuration (Docker and a cluster are not needed).
package deploy

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/glimpse-vlm/glimpse/server"
)

type meta struct {
	Name   string            `yaml:"name"`
	Labels map[string]string `yaml:"labels"`
}

type probe struct {
	GRPC *struct {
		Port    int    `yaml:"port"`
		Service string `yaml:"service"`
	} `yaml:"grpc"`
	PeriodSeconds    int `yaml:"periodSeconds"`
	FailureThreshold int `yaml:"failureThreshold"`
}

type container struct {
	Name  string   `yaml:"name"`
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
	Env   []struct {
		Name  string `yaml:"name"`
		Value string `yaml:"value"`
	} `yaml:"env"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	StartupProbe    *probe `yaml:"startupProbe"`
	ReadinessProbe  *probe `yaml:"readinessProbe"`
	LivenessProbe   *probe `yaml:"livenessProbe"`
	SecurityContext struct {
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   bool  `yaml:"readOnlyRootFilesystem"`
	} `yaml:"securityContext"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
}

type object struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   meta   `yaml:"metadata"`
	Data       map[string]string
	Spec       struct {
		// Deployment
		Replicas int `yaml:"replicas"`
		// Deployment: {matchLabels: {...}}; Service: the labels.
		Selector map[string]any `yaml:"selector"`
		Template struct {
			Metadata meta `yaml:"metadata"`
			Spec     struct {
				TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
				SecurityContext               struct {
					RunAsNonRoot bool `yaml:"runAsNonRoot"`
					RunAsUser    int  `yaml:"runAsUser"`
				} `yaml:"securityContext"`
				Containers []container `yaml:"containers"`
				Volumes    []struct {
					Name      string         `yaml:"name"`
					ConfigMap map[string]any `yaml:"configMap"`
					PVC       map[string]any `yaml:"persistentVolumeClaim"`
					Secret    map[string]any `yaml:"secret"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
		// Service
		ClusterIP string `yaml:"clusterIP"`
		Ports     []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort string `yaml:"targetPort"`
		} `yaml:"ports"`
		// HorizontalPodAutoscaler
		ScaleTargetRef struct {
			APIVersion string `yaml:"apiVersion"`
			Kind       string `yaml:"kind"`
			Name       string `yaml:"name"`
		} `yaml:"scaleTargetRef"`
		MinReplicas int `yaml:"minReplicas"`
		MaxReplicas int `yaml:"maxReplicas"`
		Metrics     []struct {
			Type     string `yaml:"type"`
			Resource struct {
				Name   string `yaml:"name"`
				Target struct {
					AverageUtilization int `yaml:"averageUtilization"`
				} `yaml:"target"`
			} `yaml:"resource"`
		} `yaml:"metrics"`
	} `yaml:"spec"`
}

// loadManifests decodes every YAML document of k8s/*.yaml by kind.
func loadManifests(t *testing.T) map[string][]object {
	t.Helper()
	files, err := filepath.Glob("k8s/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in k8s/: %v", err)
	}
	out := map[string][]object{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		for {
			var o object
			if err := dec.Decode(&o); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if o.Kind == "" || o.APIVersion == "" {
				t.Fatalf("%s: a document without kind or apiVersion", f)
			}
			out[o.Kind] = append(out[o.Kind], o)
		}
	}
	return out
}

func one(t *testing.T, m map[string][]object, kind string) object {
	t.Helper()
	if len(m[kind]) != 1 {
		t.Fatalf("want one %s, found %d", kind, len(m[kind]))
	}
	return m[kind][0]
}

func TestManifests(t *testing.T) {
	m := loadManifests(t)
	dep, svc, hpa, cm := one(t, m, "Deployment"), one(t, m, "Service"), one(t, m, "HorizontalPodAutoscaler"), one(t, m, "ConfigMap")
	if one(t, m, "Kustomization").Kind == "" {
		t.Fatal("no kustomization")
	}

	// Deployment.
	if dep.APIVersion != "apps/v1" || dep.Spec.Replicas < 2 {
		t.Errorf("deployment %s with %d replicas, want apps/v1 and ≥ 2", dep.APIVersion, dep.Spec.Replicas)
	}
	podLabels := dep.Spec.Template.Metadata.Labels
	match, _ := dep.Spec.Selector["matchLabels"].(map[string]any)
	if len(match) == 0 {
		t.Error("the Deployment has no matchLabels")
	}
	for k, v := range match {
		if podLabels[k] != v {
			t.Errorf("selector %s=%s does not match the pod labels %v", k, v, podLabels)
		}
	}
	ps := dep.Spec.Template.Spec
	if !ps.SecurityContext.RunAsNonRoot || ps.SecurityContext.RunAsUser == 0 {
		t.Error("pods must run as non-root")
	}
	if len(ps.Containers) != 1 {
		t.Fatalf("%d containers", len(ps.Containers))
	}
	c := ps.Containers[0]
	ports := map[string]int{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if ports["grpc"] != 50051 || ports["metrics"] != 9090 {
		t.Errorf("container ports %v, want grpc 50051 and metrics 9090", ports)
	}
	for name, p := range map[string]*probe{"startup": c.StartupProbe, "readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if p == nil || p.GRPC == nil || p.GRPC.Port != ports["grpc"] {
			t.Errorf("%s probe must be a gRPC health probe on the grpc port", name)
		}
	}
	if c.ReadinessProbe != nil && c.ReadinessProbe.GRPC != nil && c.ReadinessProbe.GRPC.Service != server.ServiceName && c.ReadinessProbe.GRPC.Service != "" {
		t.Errorf("readiness probes service %q, which the server does not report", c.ReadinessProbe.GRPC.Service)
	}
	for _, r := range []string{"cpu", "memory"} {
		if c.Resources.Requests[r] == "" || c.Resources.Limits[r] == "" {
			t.Errorf("no %s request and limit", r)
		}
	}
	if c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation || !c.SecurityContext.ReadOnlyRootFilesystem {
		t.Error("the container must forbid privilege escalation and use a read-only root file system")
	}
	mounts := map[string]string{}
	for _, vm := range c.VolumeMounts {
		mounts[vm.Name] = vm.MountPath
		if vm.Name == "models" && !vm.ReadOnly {
			t.Error("the models volume must be mounted read-only")
		}
	}
	if mounts["models"] != "/models" || mounts["config"] != "/etc/glimpse" {
		t.Errorf("mounts %v, want models at /models and config at /etc/glimpse", mounts)
	}
	vols := map[string]bool{}
	for _, v := range ps.Volumes {
		vols[v.Name] = true
		if v.Name == "config" && v.ConfigMap["name"] != cm.Metadata.Name {
			t.Errorf("config volume names ConfigMap %v, the manifest is %s", v.ConfigMap["name"], cm.Metadata.Name)
		}
	}
	for name := range mounts {
		if !vols[name] {
			t.Errorf("mount %s has no volume", name)
		}
	}

	// The container's arguments and environment are valid serve flags, and
	// the ConfigMap is a valid config file whose listen addresses match the
	// ports.
	cfg := server.DefaultConfig()
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "glimpse.yaml")
	if err := os.WriteFile(cfgFile, []byte(cm.Data["glimpse.yaml"]), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := cfg.LoadFile(cfgFile); err != nil {
		t.Fatalf("ConfigMap glimpse.yaml: %v", err)
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg.BindFlags(fs)
	var config, level, format string
	fs.StringVar(&config, "config", "", "")
	fs.StringVar(&level, "log-level", "info", "")
	fs.StringVar(&format, "log-format", "text", "")
	if err := fs.Parse(c.Args); err != nil {
		t.Fatalf("container args %q: %v", c.Args, err)
	}
	if config != mounts["config"]+"/glimpse.yaml" {
		t.Errorf("--config %s is not the mounted ConfigMap", config)
	}
	for _, e := range c.Env {
		if strings.HasPrefix(e.Name, "GLIMPSE_") && fs.Lookup(strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(e.Name, "GLIMPSE_"), "_", "-"))) == nil {
			t.Errorf("env %s sets no serve flag", e.Name)
		}
	}
	cfg.AuthTokenFile = "" // a Secret mounted at run time
	if err := cfg.Validate(); err != nil {
		t.Fatalf("the deployed configuration is invalid: %v", err)
	}
	if !strings.HasSuffix(cfg.Addr, ":50051") || !strings.HasSuffix(cfg.MetricsAddr, ":9090") {
		t.Errorf("addr %s, metrics_addr %s do not match the container ports", cfg.Addr, cfg.MetricsAddr)
	}
	for _, md := range cfg.Models {
		if !strings.HasPrefix(md.Dir, "/models/") {
			t.Errorf("model %s is not on the models volume: %s", md.Name, md.Dir)
		}
	}
	if want := int(cfg.GracePeriod.Seconds()) + 5; ps.TerminationGracePeriodSeconds < want {
		t.Errorf("terminationGracePeriodSeconds %d < grace_period + preStop (%d): requests would be cut off", ps.TerminationGracePeriodSeconds, want)
	}

	// Headless Service over the same pods.
	if svc.Spec.ClusterIP != "None" {
		t.Errorf("Service clusterIP %q, want None (headless, for client-side balancing)", svc.Spec.ClusterIP)
	}
	if len(svc.Spec.Selector) == 0 {
		t.Error("the Service has no selector")
	}
	for k, v := range svc.Spec.Selector {
		if podLabels[k] != v {
			t.Errorf("Service selector %s=%s does not match the pods", k, v)
		}
	}
	svcPorts := map[string]string{}
	for _, p := range svc.Spec.Ports {
		svcPorts[p.Name] = p.TargetPort
	}
	if svcPorts["grpc"] != "grpc" {
		t.Errorf("Service ports %v lack grpc → grpc", svcPorts)
	}

	// HPA.
	if hpa.APIVersion != "autoscaling/v2" || hpa.Spec.ScaleTargetRef.Kind != "Deployment" || hpa.Spec.ScaleTargetRef.Name != dep.Metadata.Name {
		t.Errorf("HPA targets %+v, want the Deployment %s", hpa.Spec.ScaleTargetRef, dep.Metadata.Name)
	}
	if hpa.Spec.MinReplicas < 1 || hpa.Spec.MaxReplicas <= hpa.Spec.MinReplicas {
		t.Errorf("HPA replicas %d..%d", hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas)
	}
	if len(hpa.Spec.Metrics) == 0 || hpa.Spec.Metrics[0].Resource.Name != "cpu" || hpa.Spec.Metrics[0].Resource.Target.AverageUtilization == 0 {
		t.Errorf("HPA metrics %+v, want CPU utilisation", hpa.Spec.Metrics)
	}
}

func TestDockerfile(t *testing.T) {
	raw, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(raw)
	froms := regexp.MustCompile(`(?m)^FROM\s+(\S+)`).FindAllStringSubmatch(df, -1)
	if len(froms) < 2 {
		t.Fatalf("%d FROM lines, want a multi-stage build", len(froms))
	}
	final := froms[len(froms)-1][1]
	if !strings.Contains(final, "distroless/static") && final != "scratch" {
		t.Errorf("runtime base %s, want distroless/static or scratch", final)
	}
	gomod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goVer := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(string(gomod))
	if goVer == nil || !strings.Contains(froms[0][1], "golang:"+goVer[1]) {
		t.Errorf("builder %s does not use go.mod's Go %v", froms[0][1], goVer)
	}
	for _, want := range []string{"CGO_ENABLED=0", "./cmd/glimpse", `VOLUME ["/models"]`, "EXPOSE 50051", `ENTRYPOINT ["/usr/local/bin/glimpse", "serve"]`} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %s", want)
		}
	}
	user := regexp.MustCompile(`(?m)^USER\s+(\S+)`).FindAllStringSubmatch(df, -1)
	if len(user) == 0 || strings.HasPrefix(user[len(user)-1][1], "0") || strings.HasPrefix(user[len(user)-1][1], "root") {
		t.Errorf("the image must run as a non-root USER, got %v", user)
	}
}
