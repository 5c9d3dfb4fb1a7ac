import Foundation
import StraitCore
import StraitStore

/// Models and endpoint configs: resources that are created, described, listed and deleted, never changed.
extension ControlPlane {
    func createModel(_ request: Request) throws(ServiceError) -> JSONValue {
        let name = try request.required("ModelName")
        let containers = request["Containers"]?.arrayValue ?? []
        let primary = request["PrimaryContainer"]
        switch (primary, containers.isEmpty) {
        case (nil, true):
            throw .validation("Either PrimaryContainer or Containers must be specified for model \"\(name)\".")
        case (.some, false):
            throw .validation("PrimaryContainer and Containers cannot both be specified for model \"\(name)\".")
        default:
            break
        }
        for container in primary.map({ [$0] }) ?? containers
        where container["Image"]?.stringValue == nil && container["ModelPackageName"]?.stringValue == nil {
            throw .validation("A container of model \"\(name)\" has no Image. Specify the image to run.")
        }
        if primary?["ModelPackageName"]?.stringValue != nil
            || containers.contains(where: { $0["ModelPackageName"] != nil })
        {
            throw .validation("ModelPackageName is not supported by Strait; specify the container's Image instead.")
        }
        if let vpcConfig = request["VpcConfig"], let vpcConfigValidator {
            try vpcConfigValidator(
                (vpcConfig["Subnets"]?.arrayValue ?? []).compactMap(\.stringValue),
                (vpcConfig["SecurityGroupIds"]?.arrayValue ?? []).compactMap(\.stringValue)
            )
        }
        let arn = account.arn(.model, name)
        var document = request.describing(removing: ["Tags"])
        if document["EnableNetworkIsolation"] == nil, case .object(var members) = document {
            members["EnableNetworkIsolation"] = .bool(false)
            document = .object(members)
        }
        let record = DocumentRecord(type: .model, name: name, arn: arn, creationTime: clock.now(), document: document)
        try storing { () throws(StoreError) in try store.insert(record, tags: request.tags()) }
        return .object(["ModelArn": .string(arn)])
    }

    func createEndpointConfig(_ request: Request) throws(ServiceError) -> JSONValue {
        let name = try request.required("EndpointConfigName")
        let variants = request["ProductionVariants"]?.arrayValue ?? []
        var seen = Set<String>()
        var filled: [JSONValue] = []
        for variant in variants {
            guard case .object(var members) = variant, let variantName = variant["VariantName"]?.stringValue else {
                continue
            }
            guard seen.insert(variantName).inserted else {
                throw .validation("The variant name \"\(variantName)\" was non-unique within the request.")
            }
            guard let modelName = variant["ModelName"]?.stringValue else {
                throw .validation("ModelName is required for production variant \"\(variantName)\".")
            }
            guard try storing({ () throws(StoreError) in try store.document(.model, named: modelName) }) != nil else {
                throw notFound(.model, modelName)
            }
            if variant["ServerlessConfig"] == nil {
                guard variant["InstanceType"] != nil, variant["InitialInstanceCount"] != nil else {
                    throw .validation(
                        "Production variant \"\(variantName)\" needs InstanceType and InitialInstanceCount, or a ServerlessConfig."
                    )
                }
            }
            if members["InitialVariantWeight"] == nil { members["InitialVariantWeight"] = .number(1) }
            filled.append(.object(members))
        }
        if let shadows = request["ShadowProductionVariants"]?.arrayValue, !shadows.isEmpty {
            throw .validation("ShadowProductionVariants are not supported by Strait yet.")
        }
        let arn = account.arn(.endpointConfig, name)
        guard case .object(var document) = request.describing(removing: ["Tags"]) else { throw .internalFailure() }
        document["ProductionVariants"] = .array(filled)
        let record = DocumentRecord(
            type: .endpointConfig,
            name: name,
            arn: arn,
            creationTime: clock.now(),
            document: .object(document)
        )
        try storing { () throws(StoreError) in try store.insert(record, tags: request.tags()) }
        return .object(["EndpointConfigArn": .string(arn)])
    }

    func describeDocument(_ type: ResourceType, _ request: Request, nameField: String) throws(ServiceError) -> JSONValue
    {
        let name = try request.required(nameField)
        guard let record = try storing({ () throws(StoreError) in try store.document(type, named: name) }) else {
            throw notFound(type, name)
        }
        guard case .object(var members) = record.document else { throw .internalFailure() }
        members[nameField] = .string(record.name)
        members[type == .model ? "ModelArn" : "EndpointConfigArn"] = .string(record.arn)
        members["CreationTime"] = Timestamps.json(record.creationTime)
        return .object(members)
    }

    func deleteDocument(_ type: ResourceType, _ request: Request, nameField: String) throws(ServiceError) -> JSONValue {
        let name = try request.required(nameField)
        guard try storing({ () throws(StoreError) in try store.deleteDocument(type, named: name) }) else {
            throw notFound(type, name)
        }
        return .object([:])
    }

    func listDocuments(
        _ type: ResourceType,
        _ request: Request,
        key: String,
        nameField: String,
        arnField: String
    ) throws(ServiceError) -> JSONValue {
        let records = try storing { () throws(StoreError) in try store.documents(type) }
        let items = records.map { record in
            ListItem(
                name: record.name,
                creationTime: record.creationTime,
                lastModifiedTime: nil,
                status: nil,
                summary: .object([
                    nameField: .string(record.name), arnField: .string(record.arn),
                    "CreationTime": Timestamps.json(record.creationTime),
                ])
            )
        }
        return try ListQuery(request).page(items, key: key)
    }
}
