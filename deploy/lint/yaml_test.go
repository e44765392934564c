package lint

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if builtTool.dir != "" {
		os.RemoveAll(builtTool.dir)
	}
	os.Exit(code)
}

func TestEveryYAMLParses(t *testing.T) {
	files := yamlFiles(t, deployDir(t))
	if len(files) < 8 {
		t.Fatalf("found only %d YAML files under deploy/: %v", len(files), files)
	}
	for _, f := range files {
		rel, _ := filepath.Rel(root(t), f)
		t.Run(rel, func(t *testing.T) {
			if docs := readDocs(t, f); len(docs) == 0 {
				t.Errorf("%s holds no YAML document", rel)
			}
		})
	}
}

// TestExampleConfig: every key of the example /etc/dsn/dsn-node.yaml is a
// dsn-node flag (dsn-node refuses unknown keys at start).
func TestExampleConfig(t *testing.T) {
	flags := buildTools(t).flags
	docs := readDocs(t, filepath.Join(deployDir(t), "systemd", "dsn-node.yaml"))
	if len(docs) != 1 {
		t.Fatalf("want one document, got %d", len(docs))
	}
	for k := range docs[0] {
		if !flags[k] || k == "config" {
			t.Errorf("dsn-node.yaml: key %q is not a dsn-node flag (dsn-node -h)", k)
		}
	}
	for _, need := range []string{"name", "domain", "sip", "cluster", "join", "dns-server", "dns-zone", "admin"} {
		if _, ok := docs[0][need]; !ok {
			t.Errorf("dsn-node.yaml lacks %q", need)
		}
	}
	for _, secret := range []string{"cluster-key-file", "tsig-key-file"} {
		if _, ok := docs[0][secret]; ok {
			t.Errorf("dsn-node.yaml sets %s: the unit passes it from systemd credentials", secret)
		}
	}
}

func TestComposeFile(t *testing.T) {
	docs := readDocs(t, filepath.Join(deployDir(t), "compose", "compose.yaml"))
	c := docs[0]
	services := mapAt(c, "services")
	for _, name := range []string{"keys", "dns", "sn1", "sn2", "sn3"} {
		if services[name] == nil {
			t.Fatalf("compose.yaml has no service %q", name)
		}
	}
	if img := str(c, "services", "dns", "image"); !strings.HasPrefix(img, "ubuntu/bind9") {
		t.Errorf("dns image %q, want ubuntu/bind9", img)
	}
	// named.conf and the snippet are mounted from deploy/bind and exist.
	var mounted []string
	for _, v := range list(c, "services", "dns", "volumes") {
		src, _, _ := strings.Cut(v.(string), ":")
		if strings.HasPrefix(src, ".") {
			mounted = append(mounted, src)
			if _, err := os.Stat(filepath.Join(deployDir(t), "compose", src)); err != nil {
				t.Errorf("dns mounts %s: %v", src, err)
			}
		}
	}
	if !slices.Contains(mounted, "../bind/named.conf") {
		t.Errorf("dns does not mount ../bind/named.conf: %v", mounted)
	}
	joined := 0
	for _, name := range []string{"sn1", "sn2", "sn3"} {
		s := services[name]
		if df := str(s, "build", "dockerfile"); df != "deploy/docker/Dockerfile" {
			t.Errorf("%s builds %q, want deploy/docker/Dockerfile", name, df)
		} else if ctx := str(s, "build", "context"); filepath.Clean(filepath.Join(deployDir(t), "compose", ctx)) != root(t) {
			t.Errorf("%s build context %q is not the repository root", name, ctx)
		}
		env := mapAt(s, "environment")
		var names []string
		for k := range env {
			names = append(names, k)
		}
		checkEnvNames(t, "compose "+name, names)
		if env["DSN_NAME"] != name {
			t.Errorf("%s: DSN_NAME %v", name, env["DSN_NAME"])
		}
		for _, k := range []string{"DSN_DOMAIN", "DSN_CLUSTER_KEY_FILE", "DSN_DNS_SERVER", "DSN_TSIG_KEY_FILE", "DSN_SIP_ADVERTISE", "DSN_ADMIN"} {
			if env[k] == nil {
				t.Errorf("%s: %s not set", name, k)
			}
		}
		if env["DSN_JOIN"] != nil {
			joined++
		}
		if hc := list(s, "healthcheck", "test"); len(hc) < 2 || !strings.HasSuffix(hc[1].(string), "dsnctl") {
			t.Errorf("%s: healthcheck %v does not run dsnctl", name, hc)
		}
	}
	if joined != 2 {
		t.Errorf("%d nodes join the others, want 2 (sn1 starts the ring)", joined)
	}
}

// k8sObjects returns the documents of every manifest in deploy/k8s by
// kind/name.
func k8sObjects(t *testing.T) map[string]map[string]any {
	t.Helper()
	objs := map[string]map[string]any{}
	files := yamlFiles(t, filepath.Join(deployDir(t), "k8s"))
	for _, f := range files {
		for i, d := range readDocs(t, f) {
			where := filepath.Base(f)
			kind, name := str(d, "kind"), str(d, "metadata", "name")
			if str(d, "apiVersion") == "" || kind == "" {
				t.Errorf("%s document %d: apiVersion and kind are required", where, i)
				continue
			}
			if kind == "Kustomization" {
				continue
			}
			if name == "" {
				t.Errorf("%s: %s without metadata.name", where, kind)
				continue
			}
			objs[kind+"/"+name] = d
		}
	}
	return objs
}

func TestKubernetesManifests(t *testing.T) {
	objs := k8sObjects(t)
	sts := objs["StatefulSet/dsn"]
	if sts == nil {
		t.Fatalf("no StatefulSet dsn among %d objects", len(objs))
	}
	spec := mapAt(sts, "spec")
	pod := mapAt(spec, "template", "spec")

	// Selector, template labels and Services agree.
	sel := mapAt(spec, "selector", "matchLabels")
	labels := mapAt(spec, "template", "metadata", "labels")
	for k, v := range sel {
		if labels[k] != v {
			t.Errorf("StatefulSet selector %s=%v does not match the template labels %v", k, v, labels)
		}
	}
	headless := objs["Service/"+str(spec, "serviceName")]
	if headless == nil {
		t.Fatalf("serviceName %q names no Service", str(spec, "serviceName"))
	}
	if str(headless, "spec", "clusterIP") != "None" {
		t.Errorf("Service %s is not headless (clusterIP: None)", str(spec, "serviceName"))
	}
	if get(headless, "spec", "publishNotReadyAddresses") != true {
		t.Error("headless Service must publish not-ready pods so that starting nodes can join")
	}
	for _, svc := range []map[string]any{headless, objs["Service/dsn-sip"]} {
		if svc == nil {
			t.Fatal("no Service dsn-sip")
		}
		for k, v := range mapAt(svc, "spec", "selector") {
			if labels[k] != v {
				t.Errorf("Service %s selects %s=%v, the pods do not carry it", str(svc, "metadata", "name"), k, v)
			}
		}
	}
	sipProtos := map[string]bool{}
	for _, p := range list(objs["Service/dsn-sip"], "spec", "ports") {
		if get(p, "port") == 5060 {
			sipProtos[str(p, "protocol")] = true
		}
	}
	if !sipProtos["UDP"] || !sipProtos["TCP"] {
		t.Errorf("SIP Service must carry 5060 over UDP and TCP, has %v", sipProtos)
	}
	clusterPort := false
	for _, p := range list(headless, "spec", "ports") {
		clusterPort = clusterPort || get(p, "port") == 7946
	}
	if !clusterPort {
		t.Error("headless Service does not carry the cluster port 7946")
	}

	// The node container.
	var node map[string]any
	for _, c := range list(pod, "containers") {
		if str(c, "name") == "dsn-node" {
			node = c.(map[string]any)
		}
	}
	if node == nil {
		t.Fatal("no container dsn-node")
	}
	ports := map[string]bool{}
	for _, p := range list(node, "ports") {
		ports[str(p, "name")] = true
	}
	for _, probe := range []struct{ kind, path string }{{"readinessProbe", "/readyz"}, {"livenessProbe", "/healthz"}} {
		if got := str(node, probe.kind, "httpGet", "path"); got != probe.path {
			t.Errorf("%s path %q, want %s", probe.kind, got, probe.path)
		}
		if p := str(node, probe.kind, "httpGet", "port"); !ports[p] {
			t.Errorf("%s port %q is not a named container port", probe.kind, p)
		}
	}
	for _, p := range []string{"sip-udp", "sip-tcp", "cluster-udp", "cluster-tcp", "admin"} {
		if !ports[p] {
			t.Errorf("container port %s missing", p)
		}
	}
	env := map[string]any{}
	var envNames []string
	for _, e := range list(node, "env") {
		env[str(e, "name")] = e
		envNames = append(envNames, str(e, "name"))
	}
	if str(env["DSN_NAME"], "valueFrom", "fieldRef", "fieldPath") != "metadata.name" {
		t.Error("DSN_NAME must come from the pod name (fieldRef metadata.name): the ring ID derives from it")
	}
	checkEnvNames(t, "StatefulSet env", envNames)
	cm := objs["ConfigMap/"+str(node, "envFrom", 0, "configMapRef", "name")]
	if cm == nil {
		t.Fatal("envFrom names no ConfigMap of deploy/k8s")
	}
	var cmKeys []string
	for k := range mapAt(cm, "data") {
		cmKeys = append(cmKeys, k)
	}
	checkEnvNames(t, "ConfigMap", cmKeys)
	if mapAt(cm, "data")["DSN_JOIN"] != nil || env["DSN_JOIN"] != nil {
		t.Error("DSN_JOIN in the environment would override the join list the init container writes")
	}

	// Graceful leave on SIGTERM: a preStop and a grace period longer than
	// the node's 10 s shutdown.
	if get(node, "lifecycle", "preStop") == nil {
		t.Error("no preStop hook")
	}
	if g, _ := get(pod, "terminationGracePeriodSeconds").(int); g < 20 {
		t.Errorf("terminationGracePeriodSeconds %d: the graceful leave needs at least 20", g)
	}
	if get(pod, "securityContext", "runAsNonRoot") != true {
		t.Error("pods must run as non-root")
	}

	// Keys: mounted from the Secret the example documents.
	secret := ""
	for _, v := range list(pod, "volumes") {
		if s := str(v, "secret", "secretName"); s != "" {
			secret = s
		}
	}
	example := readDocs(t, filepath.Join(deployDir(t), "k8s", "secret.example.yaml"))
	if secret == "" || str(example[0], "metadata", "name") != secret {
		t.Errorf("pods mount Secret %q, secret.example.yaml documents %q", secret, str(example[0], "metadata", "name"))
	}
	for _, k := range []string{"cluster.key", "tsig.key"} {
		if mapAt(example[0], "stringData")[k] == nil {
			t.Errorf("secret.example.yaml lacks %s", k)
		}
	}
	if pdb := objs["PodDisruptionBudget/dsn"]; pdb == nil {
		t.Error("no PodDisruptionBudget")
	}
}

func TestKustomization(t *testing.T) {
	dir := filepath.Join(deployDir(t), "k8s")
	k := readDocs(t, filepath.Join(dir, "kustomization.yaml"))[0]
	res := list(k, "resources")
	if len(res) == 0 {
		t.Fatal("kustomization lists no resources")
	}
	listed := map[string]bool{}
	for _, r := range res {
		listed[r.(string)] = true
		if _, err := os.Stat(filepath.Join(dir, r.(string))); err != nil {
			t.Errorf("resource %v: %v", r, err)
		}
	}
	if listed["secret.example.yaml"] {
		t.Error("the example Secret must not be applied by the kustomization")
	}
	for _, f := range yamlFiles(t, dir) {
		b := filepath.Base(f)
		if b != "kustomization.yaml" && b != "secret.example.yaml" && !listed[b] {
			t.Errorf("%s is not listed in kustomization.yaml", b)
		}
	}
}
