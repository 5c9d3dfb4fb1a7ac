import StraitCore
import Testing

private func instance(_ id: String, _ zone: String, outstanding: Int = 0, capacity: Int = .max) -> InstanceRoute {
    let counter = OutstandingRequests()
    for _ in 0..<outstanding { counter.increment() }
    return InstanceRoute(id: id, zone: zone, host: "127.0.0.1", port: 1, outstanding: counter, capacity: capacity)
}

private func variant(
    _ name: String,
    weight: Double = 1,
    strategy: RoutingStrategy = .random,
    _ instances: [InstanceRoute]
) -> VariantRoute {
    VariantRoute(name: name, weight: weight, strategy: strategy, instances: instances)
}

@Suite struct RouterTests {
    @Test func variantsAreDrawnByWeight() {
        let endpoint = EndpointRoute(
            name: "e",
            variants: [variant("a", weight: 1, []), variant("b", weight: 3, []), variant("c", weight: 0, [])]
        )
        var random = RoutingRandom(seed: 7)
        var counts = [0, 0, 0]
        for _ in 0..<40_000 {
            guard let index = Router.chooseVariant(endpoint, target: nil, random: &random) else {
                Issue.record("no variant chosen")
                return
            }
            counts[index] += 1
        }
        #expect(counts[2] == 0)
        let share = Double(counts[1]) / 40_000
        #expect(abs(share - 0.75) < 0.02)
    }

    /// Weights whose sum overflows a Double must not trap (Double.random over an infinite range would).
    @Test func hugeWeightsStillRoute() {
        let endpoint = EndpointRoute(
            name: "e",
            variants: [variant("a", weight: 1e308, []), variant("b", weight: 1e308, [])]
        )
        var random = RoutingRandom(seed: 9)
        var counts = [0, 0]
        for _ in 0..<1_000 {
            guard let index = Router.chooseVariant(endpoint, target: nil, random: &random) else {
                Issue.record("no variant chosen")
                return
            }
            counts[index] += 1
        }
        #expect(counts[0] > 400 && counts[1] > 400)
    }

    @Test func allZeroWeightsStillRoute() {
        let endpoint = EndpointRoute(name: "e", variants: [variant("a", weight: 0, []), variant("b", weight: 0, [])])
        var random = RoutingRandom(seed: 1)
        #expect(Router.chooseVariant(endpoint, target: nil, random: &random) != nil)
    }

    @Test func targetVariantPinsTheCall() {
        let endpoint = EndpointRoute(name: "e", variants: [variant("a", weight: 100, []), variant("b", weight: 0, [])])
        var random = RoutingRandom(seed: 1)
        for _ in 0..<100 { #expect(Router.chooseVariant(endpoint, target: "b", random: &random) == 1) }
        #expect(Router.chooseVariant(endpoint, target: "B", random: &random) == nil)
        #expect(Router.chooseVariant(endpoint, target: "missing", random: &random) == nil)
    }

    @Test func aZonalEndpointStaysInItsZone() {
        let route = variant(
            "v",
            [instance("a1", "za"), instance("b1", "zb"), instance("a2", "za"), instance("b2", "zb")]
        )
        var random = RoutingRandom(seed: 3)
        var seen = Set<String>()
        for _ in 0..<200 {
            guard let index = Router.chooseInstance(route, zone: "za", random: &random) else {
                Issue.record("no instance")
                return
            }
            #expect(route.instances[index].zone == "za")
            seen.insert(route.instances[index].id)
        }
        #expect(seen == ["a1", "a2"])
    }

    @Test func spillsToOtherZonesOnlyWhenItsOwnHasNone() {
        let route = variant("v", [instance("a1", "za"), instance("b1", "zb")])
        var random = RoutingRandom(seed: 3)
        // Zone c has no instance: every other zone is eligible.
        var zones = Set<String>()
        for _ in 0..<100 {
            if let index = Router.chooseInstance(route, zone: "zc", random: &random) {
                zones.insert(route.instances[index].zone)
            }
        }
        #expect(zones == ["za", "zb"])
        // Zone a's only instance was tried already (its connection failed): the call spills to zone b.
        #expect(Router.chooseInstance(route, zone: "za", excluding: ["a1"], random: &random) == 1)
        #expect(Router.chooseInstance(route, zone: "za", excluding: ["a1", "b1"], random: &random) == nil)
    }

    @Test func theRegionalEndpointUsesEveryZone() {
        let route = variant("v", [instance("a1", "za"), instance("b1", "zb"), instance("c1", "zc")])
        var random = RoutingRandom(seed: 11)
        var seen = Set<String>()
        for _ in 0..<300 {
            if let index = Router.chooseInstance(route, zone: nil, random: &random) {
                seen.insert(route.instances[index].id)
            }
        }
        #expect(seen == ["a1", "b1", "c1"])
    }

    @Test func leastOutstandingRequestsPicksTheIdlestInTheZone() {
        let route = variant(
            "v",
            strategy: .leastOutstandingRequests,
            [
                instance("a1", "za", outstanding: 5), instance("a2", "za", outstanding: 1),
                instance("b1", "zb", outstanding: 0),
            ]
        )
        var random = RoutingRandom(seed: 5)
        for _ in 0..<50 {
            #expect(Router.chooseInstance(route, zone: "za", random: &random) == 1)
        }
        #expect(Router.chooseInstance(route, zone: nil, random: &random) == 2)
        route.instances[2].outstanding.increment()
        route.instances[2].outstanding.increment()
        #expect(Router.chooseInstance(route, zone: nil, random: &random) == 1)
    }

    /// A zone whose instances are all full spills to another zone's instance with room; when every instance is full,
    /// calls queue in their own zone; the regional endpoint prefers instances with room.
    @Test func spillOverWhenTheZoneIsFull() {
        let route = variant(
            "v",
            [
                instance("a1", "za", outstanding: 2, capacity: 2), instance("a2", "za", outstanding: 3, capacity: 2),
                instance("b1", "zb", outstanding: 0, capacity: 2),
            ]
        )
        var random = RoutingRandom(seed: 9)
        for _ in 0..<50 {
            #expect(Router.chooseInstance(route, zone: "za", random: &random) == 2)
            #expect(Router.chooseInstance(route, zone: nil, random: &random) == 2)
        }
        route.instances[2].outstanding.increment()
        route.instances[2].outstanding.increment()
        var seen = Set<Int>()
        for _ in 0..<100 {
            if let index = Router.chooseInstance(route, zone: "za", random: &random) { seen.insert(index) }
        }
        #expect(seen == [0, 1])
        // Room again at home: back to zone a.
        route.instances[0].outstanding.decrement()
        for _ in 0..<20 { #expect(Router.chooseInstance(route, zone: "za", random: &random) == 0) }
    }

    @Test func noInstancesMeansNoChoice() {
        var random = RoutingRandom(seed: 1)
        #expect(Router.chooseInstance(variant("v", []), zone: "za", random: &random) == nil)
        #expect(Router.chooseVariant(EndpointRoute(name: "e", variants: []), target: nil, random: &random) == nil)
    }

    @Test func tableLookupIgnoresCase() {
        let table = RoutingTable(endpoints: [EndpointRoute(name: "My-Endpoint", variants: [])])
        #expect(table.endpoint(named: "my-endpoint")?.name == "My-Endpoint")
        #expect(table.endpoint(named: "MY-ENDPOINT")?.name == "My-Endpoint")
        #expect(table.endpoint(named: "other") == nil)
    }
}
