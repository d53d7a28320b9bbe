// Command lua-health runs an Argo CD resource health script over one
// object and prints the health it computes:
//
//	lua-health SCRIPT.lua OBJECT.json
//	{"status":"Healthy","message":"..."}
//
// It runs the script the way Argo CD does: in gopher-lua (the interpreter
// Argo CD embeds), with only the base, table, string and math libraries
// open (no io or os: a script that reaches for them fails here as it
// would there), with the object as the global `obj` (JSON objects as
// tables, arrays as tables indexed from 1, null as nil), and the table the
// chunk returns read as {status, message}. A status Argo CD would not
// accept is an error, so a typo in a script fails a test instead of
// showing as Unknown in a user's UI.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// The health statuses Argo CD knows.
var known = map[string]bool{
	"Healthy": true, "Progressing": true, "Degraded": true,
	"Suspended": true, "Missing": true, "Unknown": true,
}

type health struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: lua-health SCRIPT.lua OBJECT.json")
		os.Exit(2)
	}
	hs, err := run(os.Args[1], os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "lua-health:", err)
		os.Exit(1)
	}
	out, _ := json.Marshal(hs)
	fmt.Println(string(out))
}

func run(scriptPath, objectPath string) (*health, error) {
	script, err := os.ReadFile(scriptPath)
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(objectPath)
	if err != nil {
		return nil, err
	}
	var obj any
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fmt.Errorf("%s: %w", objectPath, err)
	}

	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer L.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.StringLibName, lua.OpenString},
		{lua.MathLibName, lua.OpenMath},
	} {
		L.Push(L.NewFunction(lib.open))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}
	// A script that loops forever must fail the test, not hang it.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	L.SetContext(ctx)

	L.SetGlobal("obj", toLua(L, obj))
	fn, err := L.Load(bytes.NewReader(script), scriptPath)
	if err != nil {
		return nil, err
	}
	L.Push(fn)
	if err := L.PCall(0, 1, nil); err != nil {
		return nil, err
	}
	ret := L.Get(-1)
	table, ok := ret.(*lua.LTable)
	if !ok {
		return nil, fmt.Errorf("the script returned %s, not a table", ret.Type())
	}
	hs := &health{}
	if s, ok := table.RawGetString("status").(lua.LString); ok {
		hs.Status = string(s)
	}
	if m, ok := table.RawGetString("message").(lua.LString); ok {
		hs.Message = string(m)
	}
	if !known[hs.Status] {
		return nil, fmt.Errorf("the script returned status %q, which Argo CD does not know", hs.Status)
	}
	return hs, nil
}

// toLua turns decoded JSON into Lua values: arrays keep JSON's order at
// indices 1..n, as Lua scripts expect when they use ipairs.
func toLua(L *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case []any:
		t := L.CreateTable(len(v), 0)
		for _, item := range v {
			t.Append(toLua(L, item))
		}
		return t
	case map[string]any:
		t := L.CreateTable(0, len(v))
		for key, item := range v {
			t.RawSetString(key, toLua(L, item))
		}
		return t
	default:
		panic(fmt.Sprintf("unexpected JSON value %T", v))
	}
}
