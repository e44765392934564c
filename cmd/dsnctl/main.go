package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole command with the process environment.
func run(args []string, stdout, stderr io.Writer) int {
	return runEnv(args, os.Getenv, stdout, stderr)
}

// env is what a command works with: the settled global flags and where
// to write.
type env struct {
	g      globals
	stdout io.Writer
	stderr io.Writer
}

// runEnv parses the global flags (defaults from getenv), picks the
// command, parses its flags and arguments, runs it and renders its result.
func runEnv(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	g := defaultGlobals(getenv)
	fs := flag.NewFlagSet("dsnctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	g.register(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			writeUsage(stdout)
			return exitOK
		}
		fmt.Fprintf(stderr, "dsnctl: %v\n(dsnctl -h lists the commands and flags)\n", err)
		return exitUsage
	}
	rest := fs.Args()
	if len(rest) == 0 {
		writeUsage(stderr)
		return exitUsage
	}
	if rest[0] == "help" {
		return helpCommand(rest[1:], stdout, stderr)
	}
	cmd, cmdArgs, err := findCommand(rest)
	if err != nil {
		fmt.Fprintf(stderr, "dsnctl: %v\n(dsnctl -h lists the commands)\n", err)
		return exitUsage
	}
	e := &env{stdout: stdout, stderr: stderr}
	pos, err := parseCommand(cmd, &g, cmdArgs)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			writeCommandHelp(stdout, cmd, g)
			return exitOK
		}
		fmt.Fprintf(stderr, "dsnctl %s: %v\n(dsnctl %s -h explains the command)\n", cmd.name, err, cmd.name)
		return exitUsage
	}
	if err := g.validate(); err != nil {
		fmt.Fprintf(stderr, "dsnctl %s: %v\n", cmd.name, err)
		return exitUsage
	}
	if len(pos) < cmd.minArgs || len(pos) > cmd.maxArgs {
		fmt.Fprintf(stderr, "dsnctl %s: want %s, got %d argument(s)\nusage: dsnctl %s %s\n",
			cmd.name, argCount(cmd), len(pos), cmd.name, cmd.args)
		return exitUsage
	}
	e.g = g
	ctx, cancel := context.WithTimeout(context.Background(), g.timeout)
	defer cancel()
	res, err := cmd.run(ctx, e, pos)
	if err != nil {
		reportError(stderr, cmd.name, err)
		return exitCode(err)
	}
	if err := render(stdout, g.output, res); err != nil {
		fmt.Fprintf(stderr, "dsnctl %s: write output: %v\n", cmd.name, err)
		return exitUsage
	}
	if c, ok := res.(coder); ok {
		return c.exitCode()
	}
	return exitOK
}

func argCount(c *command) string {
	switch {
	case c.maxArgs == 0:
		return "no arguments"
	case c.minArgs == c.maxArgs:
		return fmt.Sprintf("%d argument(s) (%s)", c.minArgs, c.args)
	}
	return fmt.Sprintf("%d to %d arguments (%s)", c.minArgs, c.maxArgs, c.args)
}

// findCommand resolves "status", "enum add" and the like.
func findCommand(args []string) (*command, []string, error) {
	name := args[0]
	if name == "enum" {
		if len(args) < 2 || strings.HasPrefix(args[1], "-") {
			return nil, nil, errors.New("enum needs a subcommand: add, add-prefix, del or del-prefix")
		}
		name += " " + args[1]
		args = args[1:]
	}
	for _, c := range commands() {
		if c.name == name {
			return c, args[1:], nil
		}
	}
	return nil, nil, fmt.Errorf("unknown command %q", name)
}

// parseCommand parses the command's flags (the global ones are accepted
// here too, so `dsnctl status -o json` works) and returns the positional
// arguments. Flags and arguments may be interleaved.
func parseCommand(c *command, g *globals, args []string) ([]string, error) {
	fs := flag.NewFlagSet("dsnctl "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	g.register(fs)
	if c.flags != nil {
		c.flags(fs, g)
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func helpCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		writeUsage(stdout)
		return exitOK
	}
	cmd, _, err := findCommand(args)
	if err != nil {
		fmt.Fprintf(stderr, "dsnctl help: %v\n", err)
		return exitUsage
	}
	writeCommandHelp(stdout, cmd, defaultGlobals(func(string) string { return "" }))
	return exitOK
}
