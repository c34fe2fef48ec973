# vsphere: vcsim built from Debian's govmomi source with Debian's Go (GOPATH mode), into .cache/vcsim/.
#
# Debian ships the simulator library, not its vcsim command: tests/support/vsphere/main.go is that command and
# hyperexport_ext.go adds what the simulator lacks. The build uses a COPY of the source, patched:
#   - RemoveSnapshot_Task's task names the VM as its entity (the snapshot is gone when the task ends; pyVmomi's
#     WaitForTask raises TypeError otherwise, govmomi issue 3298);
#   - Fetch of a property that is unset (vm.snapshot without snapshots) answers unset instead of panicking;
#   - every method call first asks hxInjected for a fault a test set (a Fetch asks for its own object, before
#     the simulator hands it to the PropertyCollector); /folder goes through hxFolder, /nfc/
#     through hxNFC (hyperexport_nfc.go: ExportVm's leases).
# Rebuilt only when those Go sources or the Debian package's version change.
VCSIM_DIR := .cache/vcsim
VCSIM_APT_PACKAGES := golang-go golang-github-vmware-govmomi-dev openssl
TEST_APT_PACKAGES += $(VCSIM_APT_PACKAGES)
GOVMOMI_SRC := /usr/share/gocode/src/github.com/vmware/govmomi

.PHONY: vsphere-test-deps
test-deps: vsphere-test-deps
bench-deps: vsphere-test-deps  # bench/vsphere_bench.py reads from vcsim

vsphere-test-deps: | $(STAMPS)
	$(call apt_install,$(VCSIM_APT_PACKAGES))
	@set -e; dir=$(VCSIM_DIR); \
	key="$$(dpkg-query -W -f='$${Version}' golang-github-vmware-govmomi-dev) $$(cat tests/support/vsphere/*.go mk/vsphere.mk | sha256sum | cut -c1-16)"; \
	if [ -x $$dir/vcsim ] && [ "$$(cat $$dir/build-key 2>/dev/null)" = "$$key" ]; then exit 0; fi; \
	echo "building vcsim (govmomi $$key)"; \
	rm -rf $$dir/src $$dir/vcsim; mkdir -p $$dir/src/github.com/vmware $$dir/src/hyperexport-vcsim; \
	cp -r $(GOVMOMI_SRC) $$dir/src/github.com/vmware/govmomi; sim=$$dir/src/github.com/vmware/govmomi/simulator; \
	chmod -R u+w $$dir/src; \
	sed -i 's|task := CreateTask(v, "removeSnapshot"|task := CreateTask(Map.Get(v.Vm), "removeSnapshot"|' $$sim/snapshot.go; \
	sed -i 's|^\tm := reflect.ValueOf(handler).MethodByName(name)$$|\tif f := hxInjected(method.This, method.Name); f != nil {\n\t\treturn f\n\t}\n&|' $$sim/simulator.go; \
	sed -i 's|^\tif len(obj.PropSet) == 0 {$$|\tif len(obj.PropSet) == 0 \&\& len(obj.MissingSet) == 0 {\n\t\tbody.Res = \&internal.FetchResponse{}\n\t\treturn body\n\t}\n&|' $$sim/property_collector.go; \
	sed -i 's|^\t\tif method.Name == "Fetch" {$$|\t\tvar hxFetchFault soap.HasFault\n&\n\t\t\thxFetchFault = hxInjected(method.This, "Fetch")|; s|^\t\tres = s.call(ctx, method)$$|\t\tif res = hxFetchFault; res == nil {\n\t&\n\t\t}|' $$sim/simulator.go; \
	sed -i 's|mux.HandleFunc(folderPrefix, s.ServeDatastore)|mux.HandleFunc(folderPrefix, s.hxFolder(s.ServeDatastore))|' $$sim/simulator.go; \
	sed -i 's|mux.HandleFunc(nfcPrefix, ServeNFC)|mux.HandleFunc(nfcPrefix, hxNFC)|' $$sim/simulator.go; \
	grep -q 'CreateTask(Map.Get(v.Vm), "removeSnapshot"' $$sim/snapshot.go && grep -q 'hxInjected(method.This' $$sim/simulator.go \
	  && grep -q 's.hxFolder(s.ServeDatastore)' $$sim/simulator.go && grep -q 'hxFetchFault = hxInjected' $$sim/simulator.go \
	  && grep -q 'len(obj.MissingSet) == 0' $$sim/property_collector.go && grep -q 'HandleFunc(nfcPrefix, hxNFC)' $$sim/simulator.go || { echo "vcsim: a patch no longer applies to this govmomi"; exit 1; }; \
	cp tests/support/vsphere/hyperexport_ext.go tests/support/vsphere/hyperexport_nfc.go $$sim/; cp tests/support/vsphere/main.go $$dir/src/hyperexport-vcsim/; \
	cd $$dir && GOPATH=$$PWD:/usr/share/gocode GO111MODULE=off GOFLAGS= GOCACHE=$$PWD/gocache go build -o vcsim hyperexport-vcsim; \
	echo "$$key" > build-key
