package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// loadFlags parses args into fs, then fills every flag not given on the
// command line from the environment (DSN_<FLAG>, upper-case, '-' -> '_')
// and then from the YAML file named by -config (same keys as the flags).
// Precedence: flags > environment > config file > defaults. Unknown keys in
// the file are an error naming the key.
func loadFlags(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags start with -)", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	var file map[string]any
	cfgPath := fs.Lookup("config").Value.String()
	if !set["config"] {
		if v := getenv(envName("config")); v != "" {
			cfgPath = v
		}
	}
	if cfgPath != "" {
		raw, err := os.ReadFile(cfgPath)
		if err != nil {
			return fmt.Errorf("-config: %w", err)
		}
		if err := yaml.Unmarshal(raw, &file); err != nil {
			return fmt.Errorf("-config %s: not valid YAML: %w", cfgPath, err)
		}
		var unknown []string
		for k := range file {
			if k == "config" || fs.Lookup(k) == nil {
				unknown = append(unknown, k)
			}
		}
		if len(unknown) > 0 {
			sort.Strings(unknown)
			return fmt.Errorf("-config %s: unknown key(s) %s (keys are the flag names, e.g. name, cluster, join)", cfgPath, strings.Join(unknown, ", "))
		}
	}
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || f.Name == "config" {
			return
		}
		if v := getenv(envName(f.Name)); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("environment %s=%q: %w", envName(f.Name), v, err))
			}
			return
		}
		if v, ok := file[f.Name]; ok {
			s, err := yamlScalar(v)
			if err == nil {
				err = fs.Set(f.Name, s)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("-config %s: key %s: %w", cfgPath, f.Name, err))
			}
		}
	})
	return errors.Join(errs...)
}

func envName(flagName string) string {
	return "DSN_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// yamlScalar renders a YAML value as flag text; lists become comma lists.
func yamlScalar(v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", nil
	case string:
		return x, nil
	case bool, int, int64, uint64, float64:
		return fmt.Sprint(x), nil
	case []any:
		parts := make([]string, 0, len(x))
		for _, e := range x {
			s, err := yamlScalar(e)
			if err != nil {
				return "", err
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, ","), nil
	}
	return "", fmt.Errorf("want a string, number, boolean or list, got %T", v)
}

// splitList splits a comma list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
