import Foundation
public import StraitCore

/// Writes EC2 answers as the XML botocore's EC2 parser reads: `<ActionResponse xmlns=…><requestId>…` with each
/// member under its `locationName` and list elements as `<item>`, walking the operation's output shape over a JSON
/// document keyed by botocore's member names.
public enum EC2XML {
    /// The answer to `action` with `output` (members by botocore's names).
    public static func response(action: String, output: JSONValue, requestID: String) -> [UInt8] {
        let model = EC2Model.shared
        var xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        xml += "<\(action)Response xmlns=\"\(model.xmlNamespace)/\">"
        xml += "<requestId>\(escape(requestID))</requestId>"
        if let outputShape = model.operations[action]?.output {
            writeMembers(of: outputShape, value: output, model: model, into: &xml)
        }
        xml += "</\(action)Response>"
        return Array(xml.utf8)
    }

    /// An EC2 error document.
    public static func error(_ error: ServiceError, requestID: String) -> [UInt8] {
        let xml =
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>\(escape(error.code))</Code>"
            + "<Message>\(escape(error.message))</Message></Error></Errors>"
            + "<RequestID>\(escape(requestID))</RequestID></Response>"
        return Array(xml.utf8)
    }

    private static func writeMembers(of shapeName: String, value: JSONValue, model: EC2Model, into xml: inout String) {
        guard let shape = model.shapes[shapeName], let members = value.objectValue else { return }
        for (name, reference) in shape.members {
            guard let member = members[name] else { continue }
            write(member, shape: reference.shape, element: reference.xmlName(member: name), model: model, into: &xml)
        }
    }

    private static func write(
        _ value: JSONValue,
        shape shapeName: String,
        element: String,
        model: EC2Model,
        into xml: inout String
    ) {
        guard let shape = model.shapes[shapeName] else { return }
        switch shape.type {
        case "structure":
            xml += "<\(element)>"
            writeMembers(of: shapeName, value: value, model: model, into: &xml)
            xml += "</\(element)>"
        case "list":
            guard let member = shape.member else { return }
            xml += "<\(element)>"
            for item in value.arrayValue ?? [] {
                write(item, shape: member.shape, element: member.locationName ?? "member", model: model, into: &xml)
            }
            xml += "</\(element)>"
        default:
            guard let text = scalarText(value, type: shape.type) else { return }
            xml += "<\(element)>\(escape(text))</\(element)>"
        }
    }

    private static func scalarText(_ value: JSONValue, type: String) -> String? {
        switch value {
        case .string(let text): return text
        case .bool(let flag): return flag ? "true" : "false"
        case .number(let number):
            if type == "timestamp" {
                return timestamp(Date(timeIntervalSince1970: number))
            }
            if let integer = value.intValue { return String(integer) }
            return String(number)
        default: return nil
        }
    }

    /// ISO 8601 in UTC with milliseconds, as EC2 writes times.
    static func timestamp(_ date: Date) -> String {
        let millis = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        var seconds = millis / 1000
        let fraction = millis % 1000
        let days = Int(seconds / 86_400)
        seconds %= 86_400
        let (year, month, day) = CivilCalendar.civilFromDays(days)
        func two(_ value: Int64) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let milliText = String(fraction)
        return "\(year)-\(two(Int64(month)))-\(two(Int64(day)))T\(two(seconds / 3600)):\(two(seconds / 60 % 60)):"
            + "\(two(seconds % 60)).\(String(repeating: "0", count: 3 - milliText.count))\(milliText)Z"
    }

    /// XML text escaping (element content only: quotes need none); characters XML 1.0 cannot carry become U+FFFD.
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\t", "\n", "\r": out.unicodeScalars.append(scalar)
            default:
                let value = scalar.value
                let allowed =
                    (0x20...0xD7FF).contains(value) || (0xE000...0xFFFD).contains(value) || value >= 0x10000
                out.unicodeScalars.append(allowed ? scalar : "\u{FFFD}")
            }
        }
        return out
    }
}
