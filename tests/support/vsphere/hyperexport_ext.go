// What this simulator lacks and hyperexport's tests need, answered in the real wire shapes. mk/vsphere.mk copies
// this file into the simulator package of a copy of Debian's govmomi source.
//
//   - VirtualMachine.QueryChangedDiskAreas: the allocated areas ("*") a test configures per VM and device key,
//     returned a few per call as ESXi pages them.
//   - /folder: the session cookie is required (ESXi answers 401 without one) and the bytes served are counted.
//   - faults a test injects on a method of an object: NoPermission naming a privilege, or a failed task.
//
// The test controls it over /hyperexport/ (JSON), on the simulator's own listener.
package simulator

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// ESXi returns the areas of a large disk over several calls; two per answer makes the client page.
const changedAreasPerCall = 2

type hxFault struct {
	Object    string `json:"object"`    // a moid, a moid prefix ending in "*" (task-*), or "" for any object
	Times     int    `json:"times"`     // how many calls it fails (then it is dropped); 0: every call
	Method    string `json:"method"`    // e.g. CreateSnapshot_Task
	Fault     string `json:"fault"`     // NoPermission, InvalidState, FileFault, SnapshotDisabled
	Privilege string `json:"privilege"` // NoPermission's privilegeId
	Message   string `json:"message"`
}

type hxState struct {
	sync.Mutex
	areas       map[string][]types.DiskChangeExtent // "vm-42/2000" -> allocated areas
	faults      []hxFault
	folderBytes map[string]int64 // /folder path -> bytes served
	requests    []string         // /folder requests: "GET path range"
}

var hx = &hxState{areas: map[string][]types.DiskChangeExtent{}, folderBytes: map[string]int64{}}

func init() {
	RegisterEndpoint(func(s *Service, r *Registry) {
		s.Handle("/hyperexport/", http.HandlerFunc(hxControl))
	})
}

func hxControl(w http.ResponseWriter, r *http.Request) {
	hx.Lock()
	defer hx.Unlock()
	var err error
	switch strings.TrimPrefix(r.URL.Path, "/hyperexport/") {
	case "reset":
		hx.areas = map[string][]types.DiskChangeExtent{}
		hx.faults = nil
		hx.folderBytes = map[string]int64{}
		hx.requests = nil
		hxNfcMu.Lock()
		hxNfc = hxNfcSettings{LeaseTimeout: 300}
		hxLeaseBooks = map[string]*hxLeaseRecord{}
		hxNfcMu.Unlock()
	case "areas":
		var req struct {
			VM        string     `json:"vm"`
			DeviceKey int32      `json:"device_key"`
			Areas     [][2]int64 `json:"areas"`
		}
		if err = json.NewDecoder(r.Body).Decode(&req); err == nil {
			var areas []types.DiskChangeExtent
			for _, a := range req.Areas {
				areas = append(areas, types.DiskChangeExtent{Start: a[0], Length: a[1]})
			}
			hx.areas[hxAreaKey(req.VM, req.DeviceKey)] = areas
		}
	case "fault":
		var f hxFault
		if err = json.NewDecoder(r.Body).Decode(&f); err == nil {
			hx.faults = append(hx.faults, f)
		}
	case "nfc":
		hxNfcMu.Lock()
		err = json.NewDecoder(r.Body).Decode(&hxNfc)
		hxNfcMu.Unlock()
	case "leases":
		hxNfcMu.Lock()
		defer hxNfcMu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(hxLeaseBooks)
		return
	case "faults/clear":
		hx.faults = nil
	case "folder":
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]interface{}{"bytes": hx.folderBytes, "requests": hx.requests})
		return
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func hxAreaKey(vm string, key int32) string {
	return vm + "/" + strconv.Itoa(int(key))
}

// hxInjected is the fault a test set for this method of this object, if any (called before every method).
func hxInjected(this types.ManagedObjectReference, method string) soap.HasFault {
	hx.Lock()
	var found *hxFault
	for i := range hx.faults {
		f := hx.faults[i]
		prefix := strings.HasSuffix(f.Object, "*") && strings.HasPrefix(this.Value, strings.TrimSuffix(f.Object, "*"))
		if f.Method == method && (f.Object == "" || f.Object == this.Value || prefix) {
			found = &f
			if f.Times == 1 {
				hx.faults = append(hx.faults[:i], hx.faults[i+1:]...)
			} else if f.Times > 1 {
				hx.faults[i].Times--
			}
			break
		}
	}
	hx.Unlock()
	if found == nil {
		return nil
	}
	var fault types.BaseMethodFault
	switch found.Fault {
	case "NoPermission":
		fault = &types.NoPermission{Object: this, PrivilegeId: found.Privilege}
	case "InvalidState":
		fault = &types.InvalidState{}
	case "SnapshotDisabled":
		fault = &types.SnapshotDisabled{}
	default:
		fault = &types.FileFault{File: found.Message}
	}
	if method == "CreateSnapshot_Task" && found.Fault != "NoPermission" {
		// The call is accepted and its task fails, as vCenter refuses a snapshot.
		task := CreateTask(Map.Get(this), method, func(*Task) (types.AnyType, types.BaseMethodFault) {
			return nil, fault
		})
		return &methods.CreateSnapshot_TaskBody{Res: &types.CreateSnapshot_TaskResponse{Returnval: task.Run()}}
	}
	return &serverFaultBody{Reason: Fault(found.Message, fault)}
}

// QueryChangedDiskAreas answers changeId "*" with the areas the test configured (the whole disk when none).
func (vm *VirtualMachine) QueryChangedDiskAreas(ctx *Context, req *types.QueryChangedDiskAreas) soap.HasFault {
	body := new(methods.QueryChangedDiskAreasBody)
	if vm.Config.ChangeTrackingEnabled == nil || !*vm.Config.ChangeTrackingEnabled {
		body.Fault_ = Fault("Change tracking is not active on the virtual machine", &types.FileFault{})
		return body
	}
	if req.ChangeId != "*" {
		body.Fault_ = Fault("changeId", &types.InvalidArgument{InvalidProperty: "changeId"})
		return body
	}
	var capacity int64 = -1
	for _, device := range vm.Config.Hardware.Device {
		if disk, ok := device.(*types.VirtualDisk); ok && disk.Key == req.DeviceKey {
			capacity = disk.CapacityInBytes
		}
	}
	if capacity < 0 || req.StartOffset < 0 || req.StartOffset > capacity {
		body.Fault_ = Fault("deviceKey", &types.InvalidArgument{InvalidProperty: "deviceKey"})
		return body
	}
	hx.Lock()
	areas, configured := hx.areas[hxAreaKey(vm.Self.Value, req.DeviceKey)]
	hx.Unlock()
	if !configured {
		areas = []types.DiskChangeExtent{{Start: 0, Length: capacity}}
	}
	info := types.DiskChangeInfo{StartOffset: req.StartOffset, Length: capacity - req.StartOffset}
	for _, area := range areas {
		if area.Start+area.Length <= req.StartOffset {
			continue
		}
		if len(info.ChangedArea) == changedAreasPerCall {
			info.Length = area.Start - req.StartOffset // the next call starts at the first area left out
			break
		}
		info.ChangedArea = append(info.ChangedArea, area)
	}
	body.Res = &types.QueryChangedDiskAreasResponse{Returnval: info}
	return body
}

// hxCountingWriter counts each piece before it goes out, so a client that has read it finds it counted.
type hxCountingWriter struct {
	http.ResponseWriter
	path string
}

func (c *hxCountingWriter) Write(b []byte) (int, error) {
	hx.Lock()
	hx.folderBytes[c.path] += int64(len(b))
	hx.Unlock()
	return c.ResponseWriter.Write(b)
}

// hxFolder wraps /folder: a request without a live session's cookie gets 401 (as from ESXi); GET bytes are counted.
func (s *Service) hxFolder(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		cookie, err := r.Cookie(soap.SessionCookieName)
		if err != nil {
			http.Error(w, "no session", http.StatusUnauthorized)
			return
		}
		if _, ok := s.sm.getSession(cookie.Value); !ok {
			http.Error(w, "session not authenticated", http.StatusUnauthorized)
			return
		}
		hx.Lock()
		hx.requests = append(hx.requests, r.Method+" "+r.URL.Path+" "+r.Header.Get("Range"))
		hx.Unlock()
		next(&hxCountingWriter{ResponseWriter: w, path: r.URL.Path}, r)
	}
}
