// ExportVm, its HttpNfcLease and OvfManager.CreateDescriptor, which this simulator lacks, in the real wire shapes.
// mk/vsphere.mk copies this file into the simulator package, beside hyperexport_ext.go.
//
//   - ExportVm of a powered-off VM answers an HttpNfcLease, ready, with one device URL per disk
//     (https://*/nfc/<lease>/<file>, the host left for the client to fill in, as ESXi does), serving the
//     streamOptimized export of that disk, which the test lays beside its descriptor as <name>-export.vmdk.
//     A powered-on VM gets InvalidPowerState.
//   - The lease times out after info.leaseTimeout seconds without HttpNfcLeaseProgress (state error, its URLs
//     gone). Progress, Complete and Abort are recorded; a test reads them at /hyperexport/leases and sets the
//     timeout, the serving rate and a failure after N bytes at /hyperexport/nfc.
package simulator

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

type hxNfcSettings struct {
	LeaseTimeout int32 `json:"lease_timeout"` // seconds; ESXi's default is 300
	Rate         int64 `json:"rate"`          // bytes per second served per request; 0: unlimited
	FailAfter    int64 `json:"fail_after"`    // cut each transfer after this many bytes; 0: never
}

type hxLeaseRecord struct {
	Vm     string   `json:"vm"`
	State  string   `json:"state"`
	Events []string `json:"events"`
}

var (
	hxNfcMu      sync.Mutex
	hxNfc        = hxNfcSettings{LeaseTimeout: 300}
	hxLeaseBooks = map[string]*hxLeaseRecord{}
)

// hxLease is the HttpNfcLease with its keep-alive timer and its record.
type hxLease struct {
	*HttpNfcLease
	timer   *time.Timer
	timeout time.Duration
}

// Get lets the property collector read the lease's mo fields.
func (l *hxLease) Get() mo.Reference { return l.HttpNfcLease }

func hxRecord(lease types.ManagedObjectReference, event string) {
	hxNfcMu.Lock()
	defer hxNfcMu.Unlock()
	if book := hxLeaseBooks[lease.Value]; book != nil {
		book.Events = append(book.Events, event)
		if event == "complete" || event == "abort" || event == "expired" {
			book.State = event
		}
	}
}

func (l *hxLease) end(ctx *Context, event string) {
	l.timer.Stop()
	hxRecord(l.Self, event)
	nfcLease.Delete(l.Self)
	ctx.Session.Remove(l.Self)
}

func (l *hxLease) HttpNfcLeaseProgress(ctx *Context, req *types.HttpNfcLeaseProgress) soap.HasFault {
	body := new(methods.HttpNfcLeaseProgressBody)
	if l.State != types.HttpNfcLeaseStateReady {
		body.Fault_ = Fault("the lease is no longer valid", &types.InvalidState{})
		return body
	}
	l.timer.Reset(l.timeout)
	l.TransferProgress = req.Percent
	hxRecord(l.Self, fmt.Sprintf("progress %d", req.Percent))
	body.Res = new(types.HttpNfcLeaseProgressResponse)
	return body
}

func (l *hxLease) HttpNfcLeaseComplete(ctx *Context, req *types.HttpNfcLeaseComplete) soap.HasFault {
	body := new(methods.HttpNfcLeaseCompleteBody)
	if l.State != types.HttpNfcLeaseStateReady {
		body.Fault_ = Fault("the lease is no longer valid", &types.InvalidState{})
		return body
	}
	l.State = types.HttpNfcLeaseStateDone
	l.end(ctx, "complete")
	body.Res = new(types.HttpNfcLeaseCompleteResponse)
	return body
}

func (l *hxLease) HttpNfcLeaseAbort(ctx *Context, req *types.HttpNfcLeaseAbort) soap.HasFault {
	l.State = types.HttpNfcLeaseStateError
	l.end(ctx, "abort")
	return &methods.HttpNfcLeaseAbortBody{Res: new(types.HttpNfcLeaseAbortResponse)}
}

// ExportVm hands out a lease on the VM's disks; the VM must be powered off.
func (vm *VirtualMachine) ExportVm(ctx *Context, req *types.ExportVm) soap.HasFault {
	body := new(methods.ExportVmBody)
	if vm.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOff {
		body.Fault_ = Fault("", &types.InvalidPowerState{
			RequestedState: types.VirtualMachinePowerStatePoweredOff, ExistingState: vm.Runtime.PowerState,
		})
		return body
	}
	hxNfcMu.Lock()
	settings := hxNfc
	hxNfcMu.Unlock()

	inner := NewHttpNfcLease(ctx, vm.Self)
	inner.Info.Lease = inner.Self
	inner.Info.LeaseTimeout = settings.LeaseTimeout
	inner.Mode = string(types.HttpNfcLeaseModePushOrGet)
	lease := &hxLease{HttpNfcLease: inner, timeout: time.Duration(settings.LeaseTimeout) * time.Second}
	devices := object.VirtualDeviceList(vm.Config.Hardware.Device)
	var capacityKB int64
	for _, d := range devices.SelectByType((*types.VirtualDisk)(nil)) {
		disk := d.(*types.VirtualDisk)
		backing, ok := disk.Backing.(types.BaseVirtualDeviceFileBackingInfo)
		if !ok {
			continue
		}
		var file object.DatastorePath
		file.FromString(backing.GetVirtualDeviceFileBackingInfo().FileName)
		name := strings.TrimSuffix(path.Base(file.Path), ".vmdk") + "-export.vmdk"
		ds := vm.findDatastore(file.Datastore)
		inner.files[name] = path.Join(ds.Info.GetDatastoreInfo().Url, path.Dir(file.Path), name)
		controller := devices.FindByKey(disk.ControllerKey)
		bus := int32(0)
		if c, ok := controller.(types.BaseVirtualController); ok {
			bus = c.GetVirtualController().BusNumber
		}
		kind := reflect.TypeOf(controller).Elem().Name() // VirtualLsiLogicController, as ESXi names it
		unit := int32(0)
		if disk.UnitNumber != nil {
			unit = *disk.UnitNumber
		}
		capacityKB += disk.CapacityInBytes / 1024
		inner.Info.DeviceUrl = append(inner.Info.DeviceUrl, types.HttpNfcLeaseDeviceUrl{
			Key:       fmt.Sprintf("/%s/%s%d:%d", vm.Self.Value, kind, bus, unit),
			ImportKey: fmt.Sprintf("/%s/%s%d:%d", vm.Name, kind, bus, unit),
			Url:       (&url.URL{Scheme: "https", Host: "*", Path: nfcPrefix + path.Join(inner.Self.Value, name)}).String(),
			Disk:      types.NewBool(true),
			TargetId:  name,
		})
	}
	inner.Info.TotalDiskCapacityInKB = capacityKB
	ctx.Session.Put(lease)
	nfcLease.Store(inner.Self, inner)
	hxNfcMu.Lock()
	hxLeaseBooks[inner.Self.Value] = &hxLeaseRecord{Vm: vm.Self.Value, State: "ready"}
	hxNfcMu.Unlock()
	lease.timer = time.AfterFunc(lease.timeout, func() {
		inner.State = types.HttpNfcLeaseStateError
		inner.Error = &types.LocalizedMethodFault{Fault: &types.Timedout{}, LocalizedMessage: "lease timed out"}
		nfcLease.Delete(inner.Self)
		hxRecord(inner.Self, "expired")
	})
	body.Res = &types.ExportVmResponse{Returnval: inner.Self}
	return body
}

// hxNFC serves a lease's files: HEAD and GET with their length, at the rate and with the failure a test set.
func hxNFC(w http.ResponseWriter, r *http.Request) {
	p := strings.Split(r.URL.Path, "/")
	id, name := p[len(p)-2], p[len(p)-1]
	l, ok := nfcLease.Load(types.ManagedObjectReference{Type: "HttpNfcLease", Value: id})
	if !ok {
		http.NotFound(w, r)
		return
	}
	file, ok := l.(*HttpNfcLease).files[name]
	if !ok || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		http.NotFound(w, r)
		return
	}
	f, err := os.Open(file)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	info, _ := f.Stat()
	hxNfcMu.Lock()
	settings := hxNfc
	hxNfcMu.Unlock()
	w.Header().Set("Content-Type", "application/x-vnd.vmware-streamVmdk")
	w.Header().Set("Content-Length", fmt.Sprint(info.Size()))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	var sent int64
	buf := make([]byte, 64*1024)
	start := time.Now()
	for {
		n, err := f.Read(buf)
		if n > 0 {
			if settings.FailAfter > 0 && sent+int64(n) > settings.FailAfter {
				panic(http.ErrAbortHandler) // the connection drops mid-transfer
			}
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			sent += int64(n)
			if settings.Rate > 0 {
				if ahead := time.Duration(float64(sent)/float64(settings.Rate)*float64(time.Second)) - time.Since(start); ahead > 0 {
					time.Sleep(ahead)
				}
			}
		}
		if err == io.EOF {
			return
		}
		if err != nil {
			panic(http.ErrAbortHandler)
		}
	}
}

// CreateDescriptor answers an OVF 1.0 envelope of the VM with the files the client names.
func (m *OvfManager) CreateDescriptor(ctx *Context, req *types.CreateDescriptor) soap.HasFault {
	body := new(methods.CreateDescriptorBody)
	vm, ok := ctx.Map.Get(req.Obj).(*VirtualMachine)
	if !ok {
		body.Fault_ = Fault("", &types.ManagedObjectNotFound{Obj: req.Obj})
		return body
	}
	esc := func(s string) string {
		var b strings.Builder
		_ = xml.EscapeText(&b, []byte(s))
		return b.String()
	}
	var refs, disks, items strings.Builder
	for i, f := range req.Cdp.OvfFiles {
		fmt.Fprintf(&refs, "    <File ovf:href=%q ovf:id=\"file%d\" ovf:size=\"%d\"/>\n", esc(f.Path), i+1, f.Size)
	}
	i := 0
	for _, d := range object.VirtualDeviceList(vm.Config.Hardware.Device).SelectByType((*types.VirtualDisk)(nil)) {
		disk := d.(*types.VirtualDisk)
		i++
		fmt.Fprintf(&disks, "    <Disk ovf:capacity=\"%d\" ovf:capacityAllocationUnits=\"byte\" ovf:diskId=\"vmdisk%d\" ovf:fileRef=\"file%d\" "+
			"ovf:format=\"http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized\"/>\n", disk.CapacityInBytes, i, i)
		fmt.Fprintf(&items, "      <Item>\n        <rasd:AddressOnParent>%d</rasd:AddressOnParent>\n        <rasd:ElementName>Hard disk %d</rasd:ElementName>\n"+
			"        <rasd:HostResource>ovf:/disk/vmdisk%d</rasd:HostResource>\n        <rasd:InstanceID>%d</rasd:InstanceID>\n"+
			"        <rasd:ResourceType>17</rasd:ResourceType>\n      </Item>\n", i-1, i, i, 100+i)
	}
	name := req.Cdp.Name
	if name == "" {
		name = vm.Name
	}
	envelope := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vmw="http://www.vmware.com/schema/ovf">
  <References>
%s  </References>
  <DiskSection>
    <Info>Virtual disk information</Info>
%s  </DiskSection>
  <VirtualSystem ovf:id=%q>
    <Info>A virtual machine</Info>
    <Name>%s</Name>
    <OperatingSystemSection ovf:id="1" vmw:osType=%q>
      <Info>The kind of installed guest operating system</Info>
    </OperatingSystemSection>
    <VirtualHardwareSection>
      <Info>Virtual hardware requirements</Info>
      <Item>
        <rasd:ElementName>%d virtual CPU(s)</rasd:ElementName>
        <rasd:InstanceID>1</rasd:InstanceID>
        <rasd:ResourceType>3</rasd:ResourceType>
        <rasd:VirtualQuantity>%d</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>
        <rasd:ElementName>%dMB of memory</rasd:ElementName>
        <rasd:InstanceID>2</rasd:InstanceID>
        <rasd:ResourceType>4</rasd:ResourceType>
        <rasd:VirtualQuantity>%d</rasd:VirtualQuantity>
      </Item>
%s      <vmw:Config ovf:required="false" vmw:key="firmware" vmw:value=%q/>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
`, refs.String(), disks.String(), esc(name), esc(name), esc(vm.Config.GuestId), vm.Config.Hardware.NumCPU,
		vm.Config.Hardware.NumCPU, vm.Config.Hardware.MemoryMB, vm.Config.Hardware.MemoryMB, items.String(), esc(vm.Config.Firmware))
	body.Res = &types.CreateDescriptorResponse{Returnval: types.OvfCreateDescriptorResult{OvfDescriptor: envelope}}
	return body
}
