package events

// Type is a CloudEvent type. The string values are persisted in the streams:
// never derive them from Go type names and never rename one.
type Type string

// Command types: what a caller asks for.
const (
	CreateCustomerType   Type = "io.licensebus.customer.create"
	AddLicenseType       Type = "io.licensebus.license.add"
	RegisterType         Type = "io.licensebus.smartserver.register"
	SetCustomerIDType    Type = "io.licensebus.smartserver.set_customer_id"
	DownloadLicensesType Type = "io.licensebus.smartserver.download_licenses"
	ActivateLicenseType  Type = "io.licensebus.smartserver.activate_license"
	TransferToCloudType  Type = "io.licensebus.smartserver.transfer_to_cloud"
	SetVersionType       Type = "io.licensebus.smartserver.set_version"
)

// Event types: what happened.
const (
	CustomerCreatedType     Type = "io.licensebus.customer.created"
	LicenseAddedType        Type = "io.licensebus.license.added"
	LicenseBoundType        Type = "io.licensebus.license.bound"
	LicenseReleasedType     Type = "io.licensebus.license.released"
	RegisteredType          Type = "io.licensebus.smartserver.registered"
	CustomerIDSetType       Type = "io.licensebus.smartserver.customer_id_set"
	LicensesDownloadedType  Type = "io.licensebus.smartserver.licenses_downloaded"
	ActivationRequestedType Type = "io.licensebus.smartserver.activation_requested"
	LicenseActivatedType    Type = "io.licensebus.smartserver.license_activated"
	TransferRequestedType   Type = "io.licensebus.smartserver.transfer_requested"
	LicensesTransferredType Type = "io.licensebus.smartserver.licenses_transferred"
	RejectedType            Type = "io.licensebus.command.rejected"
	VersionSetType          Type = "io.licensebus.smartserver.version_set"
)

// Side says which handler owns a command.
type Side string

// The two sides of the system.
const (
	CloudSide  Side = "cloud"
	DeviceSide Side = "device"
)

// Info describes one type: its side, whether it is a command, its subject
// verb, and whether an event of it ends the command it correlates to.
type Info struct {
	Type      Type
	Command   bool
	Side      Side   // for commands: the side that handles it
	Aggregate string // customer, license, smartserver, command
	Verb      string // last subject token
	// Terminal marks the event that completes a command: callers waiting for
	// an outcome stop at the first terminal event of their correlation id.
	Terminal bool
	New      func() Data
}

// Lookup returns what is known of t; ok is false for a type licensebus does
// not define. It is a switch, not a registry, so there is no mutable state.
func Lookup(t Type) (Info, bool) {
	switch t {
	case CreateCustomerType:
		return Info{t, true, CloudSide, "customer", "customer_create", false, func() Data { return new(CreateCustomer) }}, true
	case AddLicenseType:
		return Info{t, true, CloudSide, "license", "license_add", false, func() Data { return new(AddLicense) }}, true
	case RegisterType:
		return Info{t, true, DeviceSide, "smartserver", "register", false, func() Data { return new(Register) }}, true
	case SetCustomerIDType:
		return Info{t, true, DeviceSide, "smartserver", "set_customer_id", false, func() Data { return new(SetCustomerID) }}, true
	case DownloadLicensesType:
		return Info{t, true, DeviceSide, "smartserver", "download_licenses", false, func() Data { return new(DownloadLicenses) }}, true
	case ActivateLicenseType:
		return Info{t, true, DeviceSide, "smartserver", "activate_license", false, func() Data { return new(ActivateLicense) }}, true
	case TransferToCloudType:
		return Info{t, true, DeviceSide, "smartserver", "transfer_to_cloud", false, func() Data { return new(TransferToCloud) }}, true
	case SetVersionType:
		return Info{t, true, DeviceSide, "smartserver", "set_version", false, func() Data { return new(SetVersion) }}, true
	case VersionSetType:
		return Info{t, false, "", "smartserver", "version_set", true, func() Data { return new(VersionSet) }}, true

	case CustomerCreatedType:
		return Info{t, false, "", "customer", "created", true, func() Data { return new(CustomerCreated) }}, true
	case LicenseAddedType:
		return Info{t, false, "", "license", "added", true, func() Data { return new(LicenseAdded) }}, true
	case LicenseBoundType:
		return Info{t, false, "", "license", "bound", false, func() Data { return new(LicenseBound) }}, true
	case LicenseReleasedType:
		return Info{t, false, "", "license", "released", false, func() Data { return new(LicenseReleased) }}, true
	case RegisteredType:
		return Info{t, false, "", "smartserver", "registered", true, func() Data { return new(Registered) }}, true
	case CustomerIDSetType:
		return Info{t, false, "", "smartserver", "customer_id_set", true, func() Data { return new(CustomerIDSet) }}, true
	case LicensesDownloadedType:
		return Info{t, false, "", "smartserver", "licenses_downloaded", true, func() Data { return new(LicensesDownloaded) }}, true
	case ActivationRequestedType:
		return Info{t, false, "", "smartserver", "activation_requested", false, func() Data { return new(ActivationRequested) }}, true
	case LicenseActivatedType:
		return Info{t, false, "", "smartserver", "license_activated", true, func() Data { return new(LicenseActivated) }}, true
	case TransferRequestedType:
		return Info{t, false, "", "smartserver", "transfer_requested", false, func() Data { return new(TransferRequested) }}, true
	case LicensesTransferredType:
		return Info{t, false, "", "smartserver", "licenses_transferred", true, func() Data { return new(LicensesTransferred) }}, true
	case RejectedType:
		return Info{t, false, "", "rejected", "rejected", true, func() Data { return new(Rejected) }}, true

	case AddDeviceType:
		return Info{t, true, DeviceSide, "smartserver", "add_device", false, func() Data { return new(AddDevice) }}, true
	case RemoveDeviceType:
		return Info{t, true, DeviceSide, "smartserver", "remove_device", false, func() Data { return new(RemoveDevice) }}, true
	case ProvisionDeviceType:
		return Info{t, true, DeviceSide, "smartserver", "provision_device", false, func() Data { return new(ProvisionDevice) }}, true
	case DeprovisionDeviceType:
		return Info{t, true, DeviceSide, "smartserver", "deprovision_device", false, func() Data { return new(DeprovisionDevice) }}, true
	case SetAutoProvisionType:
		return Info{t, true, DeviceSide, "smartserver", "set_auto_provision", false, func() Data { return new(SetAutoProvision) }}, true
	case DeviceAddedType:
		return Info{t, false, "", "smartserver", "device_added", true, func() Data { return new(DeviceAdded) }}, true
	case DeviceRemovedType:
		return Info{t, false, "", "smartserver", "device_removed", true, func() Data { return new(DeviceRemoved) }}, true
	case DeviceProvisionedType:
		return Info{t, false, "", "smartserver", "device_provisioned", true, func() Data { return new(DeviceProvisioned) }}, true
	case DeviceDeprovisionedType:
		return Info{t, false, "", "smartserver", "device_deprovisioned", true, func() Data { return new(DeviceDeprovisioned) }}, true
	case AutoProvisionSetType:
		return Info{t, false, "", "smartserver", "auto_provision_set", true, func() Data { return new(AutoProvisionSet) }}, true
	case AddDevicesType:
		return Info{t, true, DeviceSide, "smartserver", "add_devices", false, func() Data { return new(AddDevices) }}, true
	case ProvisionDevicesType:
		return Info{t, true, DeviceSide, "smartserver", "provision_devices", false, func() Data { return new(ProvisionDevices) }}, true
	case DevicesAddedType:
		return Info{t, false, "", "smartserver", "devices_added", true, func() Data { return new(DevicesAdded) }}, true
	case DevicesProvisionedType:
		return Info{t, false, "", "smartserver", "devices_provisioned", true, func() Data { return new(DevicesProvisioned) }}, true
	}
	if info, ok := grantsInfo(t); ok {
		return info, true
	}
	return rolloutInfo(t)
}

// Types lists every defined type, commands first, in a stable order. It is
// what documentation and schema generation iterate over.
func Types() []Type {
	return []Type{
		CreateCustomerType, AddLicenseType, RegisterType, SetCustomerIDType,
		DownloadLicensesType, ActivateLicenseType, TransferToCloudType,
		CustomerCreatedType, LicenseAddedType, LicenseBoundType, LicenseReleasedType,
		RegisteredType, CustomerIDSetType, LicensesDownloadedType, ActivationRequestedType,
		LicenseActivatedType, TransferRequestedType, LicensesTransferredType, RejectedType,
		AddDeviceType, RemoveDeviceType, ProvisionDeviceType, DeprovisionDeviceType, SetAutoProvisionType,
		DeviceAddedType, DeviceRemovedType, DeviceProvisionedType, DeviceDeprovisionedType, AutoProvisionSetType,
		AddDevicesType, ProvisionDevicesType, DevicesAddedType, DevicesProvisionedType,
		StartRolloutType, PauseRolloutType, ResumeRolloutType, CancelRolloutType, RetryFailedType,
		RolloutStartedType, WaveStartedType, TargetStartedType, TargetSucceededType, TargetFailedType,
		RolloutPausedType, RolloutResumedType, RolloutCancelledType, RolloutAbortedType, RolloutCompletedType,
		RetryRequestedType,
		SetVersionType, VersionSetType,
		FulfilType, ImportLicensesType, RotateKeyType, RevokeKeyType,
		FulfilledType, LicensesImportedType, KeyAddedType, KeyRevokedType,
	}
}

// DMM device commands and events. They belong to the SmartServer aggregate:
// the order of addition decides which devices a capacity covers.
const (
	AddDeviceType           Type = "io.licensebus.smartserver.add_device"
	RemoveDeviceType        Type = "io.licensebus.smartserver.remove_device"
	ProvisionDeviceType     Type = "io.licensebus.smartserver.provision_device"
	DeprovisionDeviceType   Type = "io.licensebus.smartserver.deprovision_device"
	SetAutoProvisionType    Type = "io.licensebus.smartserver.set_auto_provision"
	DeviceAddedType         Type = "io.licensebus.smartserver.device_added"
	DeviceRemovedType       Type = "io.licensebus.smartserver.device_removed"
	DeviceProvisionedType   Type = "io.licensebus.smartserver.device_provisioned"
	DeviceDeprovisionedType Type = "io.licensebus.smartserver.device_deprovisioned"
	AutoProvisionSetType    Type = "io.licensebus.smartserver.auto_provision_set"
	// Batches: a DMM discovery adds many devices, provisioning takes many.
	AddDevicesType         Type = "io.licensebus.smartserver.add_devices"
	ProvisionDevicesType   Type = "io.licensebus.smartserver.provision_devices"
	DevicesAddedType       Type = "io.licensebus.smartserver.devices_added"
	DevicesProvisionedType Type = "io.licensebus.smartserver.devices_provisioned"
)
