# The hyperv provider's tests run a real smbd (Debian's Samba) on 127.0.0.1 and a high port, started by the test
# session with its own smb.conf, tdbsam and directories under tmp (tests/support/hyperv_samba.py); smbclient is
# there to look at the share by hand when a test fails.
TEST_APT_PACKAGES += samba smbclient
